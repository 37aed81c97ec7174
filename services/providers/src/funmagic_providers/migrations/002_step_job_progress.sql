-- The last percent a job said in StepProgressed, so progress never goes back, whichever runner (or
-- which retry) reports it. NULL: nothing said yet.
ALTER TABLE step_jobs ADD COLUMN progress integer CHECK (progress BETWEEN 0 AND 100);
