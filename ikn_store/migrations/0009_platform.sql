-- Import/export of the space hierarchy (ikn import spaces): sites above buildings,
-- and desks that are disabled or assigned permanently to one person.
-- (Building coordinates and agency come from 0005, a zone's owning agency from 0006.)

CREATE TABLE sites (
    id   text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name text NOT NULL
);

ALTER TABLE buildings ADD COLUMN IF NOT EXISTS site_id text REFERENCES sites ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS buildings_site ON buildings (site_id);

ALTER TABLE desks
    ADD COLUMN IF NOT EXISTS disabled boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS assigned_to text REFERENCES people ON DELETE SET NULL;
