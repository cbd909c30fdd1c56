-- From which day a person's attendance counts (issue 21), and which buildings an app
-- check-in was within. A day is counted only from the latest of: the person's
-- employment start (import; SIASN later), the day the platform first knew them, and the
-- day their home building went live; and up to their employment end.

ALTER TABLE people
    ADD COLUMN known_since      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN employment_start date,
    ADD COLUMN employment_end   date,
    ADD CONSTRAINT people_employment_order
        CHECK (employment_end IS NULL OR employment_start IS NULL
               OR employment_end >= employment_start);

-- live_from: the first day the platform is in use at the building; NULL: the local day
-- the building was created.
ALTER TABLE buildings
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN live_from  date;

-- People and buildings stored before this migration count from their first attendance
-- signal (or from now, when they have none): the platform cannot tell earlier.
UPDATE people p SET known_since = s.first
FROM (SELECT person_id, min(at) AS first FROM attendance_signals GROUP BY person_id) s
WHERE s.person_id = p.id AND s.first < p.known_since;

UPDATE buildings b SET created_at = s.first
FROM (SELECT coalesce(s.building_id, p.home_building_id) AS building_id, min(s.at) AS first
      FROM attendance_signals s JOIN people p ON p.id = s.person_id
      GROUP BY 1) s
WHERE s.building_id = b.id AND s.first < b.created_at;

-- An office check-in within the geofence of several buildings: building_id is the
-- nearest, these the others (nearest first).
ALTER TABLE attendance_signals ADD COLUMN also_within text[] NOT NULL DEFAULT '{}';
