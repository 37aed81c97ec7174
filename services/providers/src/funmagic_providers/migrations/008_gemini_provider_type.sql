-- Google Gemini (admin studio image models) as a provider type. The type's CHECK was created unnamed in
-- 001 (and copied to admin_providers by LIKE): drop whichever check constrains `type` on each table and
-- add it again, named, with every type the code knows (domain.providers.ProviderType).
DO $$
DECLARE
    tbl text;
    con text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['providers', 'admin_providers'] LOOP
        FOR con IN
            SELECT c.conname FROM pg_constraint c
            WHERE c.conrelid = tbl::regclass AND c.contype = 'c'
              AND pg_get_constraintdef(c.oid) LIKE '%type%'
        LOOP
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tbl, con);
        END LOOP;
        EXECUTE format(
            'ALTER TABLE %I ADD CONSTRAINT %I CHECK (type IN '
            '(''openai'', ''fal'', ''tripo'', ''replicate'', ''hunyuan'', ''gemini'', ''local''))',
            tbl, tbl || '_type_check'
        );
    END LOOP;
END $$;
