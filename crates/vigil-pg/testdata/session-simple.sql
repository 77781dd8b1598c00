CREATE TEMP TABLE accounts (id int PRIMARY KEY, owner text, balance numeric, note text);
INSERT INTO accounts VALUES (1, 'alice', 100.50, NULL), (2, 'bob', -4749, 'canary-7f3a9c');
SELECT id, owner, balance, note FROM accounts ORDER BY id;
UPDATE accounts SET balance = balance + 1 WHERE id IN (1, 2);
DELETE FROM accounts WHERE id = 2;
INSERT INTO accounts VALUES (1, 'dup', 0, 'canary-dup-55');
SELECT 1 AS one \; SELECT 'two' AS two, NULL AS nothing;
BEGIN;
SELECT 1/0;
ROLLBACK;
BEGIN;
SELECT 3;
COMMIT;
DO $$ BEGIN RAISE NOTICE 'notice from %', 'vigil'; END $$;
LISTEN vigil_chan;
NOTIFY vigil_chan, 'payload-42';
COPY accounts TO STDOUT;
COPY accounts FROM STDIN;
3	carol	7.25	\N
4	dave	0	copied
\.
SELECT count(*) FROM accounts;
