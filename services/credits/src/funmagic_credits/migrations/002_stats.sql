-- The admin overview's figures: the transactions of a period, by their time. Type and amount ride along, so
-- the totals read the index only; a purchase's price is read from its ledger event (same position).
CREATE INDEX credit_transactions_time_idx ON credit_transactions (created_at) INCLUDE (type, amount);
