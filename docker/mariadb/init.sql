-- Source database of the docker deployment (run once by the mariadb image on an empty data volume).
-- Sensors and their readings; SENSOR_DATA_VIEW joins them into the columns of the message contract
-- (docs: /ARCHITECTURE.md "The message contract"), which the Connect JDBC source polls in timestamp
-- mode on event_time and publishes to topic sensor_data_source_SENSOR_DATA_VIEW.
-- Column types map to the contract's Connect schema: BIGINT -> int64, FLOAT -> float (float32),
-- DATETIME(3) (UTC, read with db.timezone=UTC) -> org.apache.kafka.connect.data.Timestamp (epoch ms),
-- VARCHAR -> string.

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
    ss_id       BIGINT       NOT NULL,
    event_time  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'UTC wall time, ms precision (no 2038 limit)',
    input_data  FLOAT        NULL COMMENT 'the reading',
    CONSTRAINT sensor_data_sensor FOREIGN KEY (ss_id) REFERENCES sensor (ss_id),
    KEY sensor_data_event_time (event_time)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE OR REPLACE VIEW SENSOR_DATA_VIEW AS
SELECT s.ss_id      AS ss_id,
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
       s.unit       AS unit
FROM sensor_data AS d
JOIN sensor AS s ON s.ss_id = d.ss_id;

-- One example sensor (the contract's sample record), so a fresh deployment has a series to show.
INSERT IGNORE INTO sensor (ss_id, position, type_name, unit, rstart, rlev1, rlev2, rlev3, rlev4,
                           rlev5, rlev6, rlev7, rlev8, rend)
VALUES (2, '광 주 A', 'C02', 'ppm', 0, 700, 800, 1000, 1500, 0, 0, 0, 0, 20000);
