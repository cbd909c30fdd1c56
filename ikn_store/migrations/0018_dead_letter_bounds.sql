-- Dead letters are bounded (issue 15): a payload is kept truncated to the contract's
-- maximum, with its full length and SHA-256; counts per device, reason and hour are
-- kept exactly even when the flood guard keeps only a sample of the payloads, and are
-- what the API reads instead of counting the table; both expire after the dead-letter
-- retention (ikn_store/dead_letters.py).
ALTER TABLE dead_letters ADD COLUMN size integer, ADD COLUMN sha256 bytea;
UPDATE dead_letters SET size = length(payload), sha256 = sha256(payload);
ALTER TABLE dead_letters ALTER COLUMN size SET NOT NULL, ALTER COLUMN sha256 SET NOT NULL;
CREATE INDEX dead_letters_device ON dead_letters (device_id, id);

CREATE TABLE dead_letter_counts (
    device_id text,  -- NULL: the topic named no device (bad_topic)
    reason    text NOT NULL,
    hour      timestamptz NOT NULL,
    letters   bigint NOT NULL CHECK (letters > 0),
    UNIQUE NULLS NOT DISTINCT (device_id, reason, hour)
);
CREATE INDEX dead_letter_counts_hour ON dead_letter_counts (hour);

INSERT INTO dead_letter_counts (device_id, reason, hour, letters)
SELECT device_id, reason, date_bin('1 hour', received_at, timestamptz '2000-01-01 00:00Z'),
       count(*)
FROM dead_letters GROUP BY 1, 2, 3;
