-- A person's duty station has its own zone (issue 20: WIB Asia/Jakarta, WITA
-- Asia/Makassar, WIT Asia/Jayapura): their days, start time and lateness are
-- computed in it. NULL: their home building's zone (IKN's, WITA, when they have none).
-- Set by the people import (column duty_station_tz, an IANA zone, checked there).
ALTER TABLE people ADD COLUMN duty_station_tz text
    CHECK (duty_station_tz IS NULL OR duty_station_tz ~ '^[A-Za-z_]+(/[A-Za-z0-9_+-]+)+$');
