-- What the shop shows of a package beside its name: a description, bonus credits granted on top of
-- `credits` when it is bought, a "popular" mark, and the name and description per locale (English is the
-- base columns; `translations` = {"<locale>": {"name": …, "description": …}}).
ALTER TABLE credit_packages
    ADD COLUMN description   text CHECK (char_length(description) <= 500),
    ADD COLUMN bonus_credits integer NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0),
    ADD COLUMN is_popular    boolean NOT NULL DEFAULT false,
    ADD COLUMN translations  jsonb NOT NULL DEFAULT '{}';

-- The bonus a checkout was started with, so a package changed before the payment arrives credits what the
-- buyer was shown (as `credits` already does).
ALTER TABLE purchases ADD COLUMN bonus_credits integer NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0);
