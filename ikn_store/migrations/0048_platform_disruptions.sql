-- Outage grace (issue 20): the platform records its own degradation per building and
-- time, so that lateness inside it is marked "system disruption" and a unit's
-- supervisor can excuse it in bulk (docs/attendance.md, "System disruption").
--
-- A window is of one building, or of all of them (building_id NULL). The ingest and
-- the API write them (PostgreSQL or a service unavailable past a threshold, ingest
-- lag, the API's error rate), an administrator declares the others; windows of one
-- cause and building that overlap or touch are merged into one.
CREATE TABLE platform_disruptions (
    id          bigserial PRIMARY KEY,
    building_id text REFERENCES buildings ON DELETE CASCADE,
    during      tstzrange NOT NULL
        CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    cause       text NOT NULL CHECK (cause IN ('database_unavailable', 'api_unavailable',
        'ingest_unavailable', 'api_errors', 'ingest_lag', 'declared')),
    detail      text NOT NULL DEFAULT '' CHECK (length(detail) <= 1000),
    recorded_by text NOT NULL,  -- 'api', 'ingest', or the administrator's name
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX platform_disruptions_during ON platform_disruptions USING gist (during);

-- A supervisor's bulk excuse of one window for their agency and unit: every lateness
-- and early departure of the unit's people the window overlaps stops counting.
CREATE TABLE disruption_excuses (
    disruption_id bigint NOT NULL REFERENCES platform_disruptions ON DELETE CASCADE,
    agency        text NOT NULL,
    unit          text NOT NULL,
    excused_by    text REFERENCES people ON DELETE SET NULL,
    excused_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (disruption_id, agency, unit)
);

-- Each service's last sign of life: a gap since the last beat beyond the threshold is
-- recorded as unavailability (by the process that beats next).
CREATE TABLE platform_heartbeats (
    service text PRIMARY KEY CHECK (service IN ('api', 'ingest')),
    beat_at timestamptz NOT NULL
);

-- A supervisor's list of the unit's requests is a view of their attendance too.
ALTER TABLE attendance_access DROP CONSTRAINT attendance_access_what_check;
ALTER TABLE attendance_access ADD CONSTRAINT attendance_access_what_check
    CHECK (what IN ('unit_month', 'unit_csv', 'tpp', 'absences', 'day', 'requests'));
