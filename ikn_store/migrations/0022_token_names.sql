-- API token names are unique (issue 21), so that `ikn token create` refuses a name in use
-- with a clear error and a name says which token it is. A name given to several tokens
-- before this migration stays with the oldest of them; the others get " (2)", " (3)", ...
WITH numbered AS (
    SELECT token_hash, row_number() OVER (PARTITION BY name ORDER BY created_at, token_hash) AS n
    FROM api_tokens
)
UPDATE api_tokens t SET name = t.name || ' (' || numbered.n || ')'
FROM numbered
WHERE numbered.token_hash = t.token_hash AND numbered.n > 1;

ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_name_unique UNIQUE (name);
