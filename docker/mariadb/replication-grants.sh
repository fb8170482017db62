#!/bin/bash
# Run (sourced) by the mariadb image after init.sql on an empty data volume: the source DB account also reads
# the binary log, for the Debezium connector of docker/connect/debezium-source.json (the local service grants
# the same, tsplatform/services/mariadb.py REPLICATION_GRANTS).
docker_process_sql --database=mysql <<-EOSQL
	GRANT RELOAD, PROCESS, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR, REPLICATION CLIENT
	    ON *.* TO '${MARIADB_USER}'@'%';
EOSQL
