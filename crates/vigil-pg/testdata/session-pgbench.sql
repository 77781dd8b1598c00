\set aid random(1, 100000)
SELECT :aid::int AS aid, 'row-' || :aid AS label, NULL::text AS nothing;
