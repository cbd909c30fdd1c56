-- A floor's plan drawing (issue 19): an SVG (checked to hold no script, no foreign
-- object, no outside reference: ikn_core.floor_plans) or a PNG, uploaded in the
-- console's floor-plan editor and drawn under the desks on the editor and on Find a
-- desk. Its width and height (the SVG's viewBox or size, the PNG's pixels) are the
-- plan's units from its top left corner; with a plan, desk coordinates count from there.
-- One a floor: a new upload replaces it. At most 1 MiB (the pages' request limit).
CREATE TABLE floor_plans (
    floor_id     text PRIMARY KEY REFERENCES floors ON DELETE CASCADE,
    content_type text NOT NULL CHECK (content_type IN ('image/svg+xml', 'image/png')),
    image        bytea NOT NULL CHECK (octet_length(image) BETWEEN 1 AND 1048576),
    width        real NOT NULL CHECK (width > 0 AND width <= 100000),
    height       real NOT NULL CHECK (height > 0 AND height <= 100000),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);
