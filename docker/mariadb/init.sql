-- Source database of the study: sensors, their readings and SENSOR_DATA_VIEW joining them into the columns
-- of the message contract (docs: /ARCHITECTURE.md "The message contract"). Run once by the docker mariadb
-- image on an empty data volume, and at every start of the local service (`tsplatform services up mariadb`):
-- every statement is idempotent.
-- Two routes to Kafka read it: a poller of SENSOR_DATA_VIEW (Connect JDBC source in timestamp mode, or
-- `tsplatform sql-source`), and Debezium reading the binary log of sensor_data_events (below).
-- Column types map to the contract's Connect schema: BIGINT -> int64, FLOAT -> float, DATETIME(3) (UTC wall
-- time) -> org.apache.kafka.connect.data.Timestamp (epoch ms), VARCHAR -> string.
-- Readings of a sensor that is not (yet) in `sensor` are kept: the view and the events table carry them
-- with a NULL position/type_name, so ingestion quarantines them with a reason instead of never seeing them.

SET NAMES utf8mb4;
SET time_zone = '+00:00';

CREATE TABLE IF NOT EXISTS sensor (
    ss_id      BIGINT       NOT NULL PRIMARY KEY,
    position   VARCHAR(200) NOT NULL,
    type_name  VARCHAR(100) NOT NULL,
    unit       VARCHAR(32)  NULL,
    rstart     FLOAT        NOT NULL COMMENT 'lower bound of the valid range',
    rlev1      FLOAT        NOT NULL COMMENT 'alert levels 1..8 (5..8 optional)',
    rlev2      FLOAT        NOT NULL,
    rlev3      FLOAT        NOT NULL,
    rlev4      FLOAT        NOT NULL,
    rlev5      FLOAT        NULL,
    rlev6      FLOAT        NULL,
    rlev7      FLOAT        NULL,
    rlev8      FLOAT        NULL,
    rend       FLOAT        NOT NULL COMMENT 'upper bound of the valid range',
    UNIQUE KEY sensor_series (position, type_name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sensor_data (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ss_id       BIGINT       NOT NULL COMMENT 'sensor.ss_id (no foreign key: readings of unknown sensors are kept)',
    event_time  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'UTC wall time, ms precision (no 2038 limit)',
    input_data  FLOAT        NULL COMMENT 'the reading',
    KEY sensor_data_ss_id (ss_id),
    KEY sensor_data_event_time (event_time)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE OR REPLACE VIEW SENSOR_DATA_VIEW AS
SELECT d.ss_id      AS ss_id,
       s.rstart     AS rstart,
       s.rlev1      AS rlev1,
       s.rlev2      AS rlev2,
       s.rlev3      AS rlev3,
       s.rlev4      AS rlev4,
       s.rlev5      AS rlev5,
       s.rlev6      AS rlev6,
       s.rlev7      AS rlev7,
       s.rlev8      AS rlev8,
       s.rend       AS rend,
       d.event_time AS event_time,
       d.input_data AS input_data,
       s.position   AS position,
       s.type_name  AS type_name,
       s.unit       AS unit,
       d.id         AS id
FROM sensor_data AS d
LEFT JOIN sensor AS s ON s.ss_id = d.ss_id;

-- Each reading joined with its sensor at insert time, in the same transaction (the trigger below): the table
-- Debezium captures from the binary log, so every change event carries the series identity (position,
-- type_name) and the sensor's range and levels, in SENSOR_DATA_VIEW's columns. Insert-only.
CREATE TABLE IF NOT EXISTS sensor_data_events (
    id          BIGINT       NOT NULL PRIMARY KEY COMMENT 'sensor_data.id',
    ss_id       BIGINT       NOT NULL,
    rstart      FLOAT        NULL,
    rlev1       FLOAT        NULL,
    rlev2       FLOAT        NULL,
    rlev3       FLOAT        NULL,
    rlev4       FLOAT        NULL,
    rlev5       FLOAT        NULL,
    rlev6       FLOAT        NULL,
    rlev7       FLOAT        NULL,
    rlev8       FLOAT        NULL,
    rend        FLOAT        NULL,
    event_time  DATETIME(3)  NOT NULL,
    input_data  FLOAT        NULL,
    position    VARCHAR(200) NULL,
    type_name   VARCHAR(100) NULL,
    unit        VARCHAR(32)  NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE OR REPLACE TRIGGER sensor_data_events_fill AFTER INSERT ON sensor_data FOR EACH ROW
INSERT INTO sensor_data_events (id, ss_id, rstart, rlev1, rlev2, rlev3, rlev4, rlev5, rlev6, rlev7, rlev8, rend,
                                event_time, input_data, position, type_name, unit)
SELECT NEW.id, NEW.ss_id, s.rstart, s.rlev1, s.rlev2, s.rlev3, s.rlev4, s.rlev5, s.rlev6, s.rlev7, s.rlev8,
       s.rend, NEW.event_time, NEW.input_data, s.position, s.type_name, s.unit
FROM (SELECT 1) AS one
LEFT JOIN sensor AS s ON s.ss_id = NEW.ss_id;

-- One example sensor (the contract's sample record), so a fresh deployment has a series to show.
INSERT IGNORE INTO sensor (ss_id, position, type_name, unit, rstart, rlev1, rlev2, rlev3, rlev4,
                           rlev5, rlev6, rlev7, rlev8, rend)
VALUES (2, '광 주 A', 'C02', 'ppm', 0, 700, 800, 1000, 1500, 0, 0, 0, 0, 20000);
