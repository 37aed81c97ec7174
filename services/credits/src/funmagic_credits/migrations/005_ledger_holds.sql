-- Open holds (reservations not settled yet), one row each, out of the stream's snapshot: a decision loads
-- only the holds it concerns, so its cost does not grow with a user's open holds. Written with the events
-- and the snapshot, in the same statement; `credits.reserved_balance` is their sum (checked by `verify`).
CREATE TABLE ledger_holds (
    user_id         text NOT NULL,
    reservation_id  text NOT NULL,
    amount          bigint NOT NULL CHECK (amount >= 0),   -- a free task holds 0 until it settles
    -- The reservation first: a decision finds its holds by reservation id, never by walking a user's holds
    -- (a busy user has thousands).
    PRIMARY KEY (reservation_id, user_id)
);

INSERT INTO ledger_holds (user_id, reservation_id, amount)
SELECT a.user_id, held.key, held.value::bigint
FROM ledger_accounts a, jsonb_each_text(a.state -> 'open_reservations') AS held;

UPDATE ledger_accounts SET state = state - 'open_reservations' WHERE state ? 'open_reservations';
