-- The W3C traceparent of the StepRequested a job was made from: the runner continues that trace when it
-- takes the job, so a task's trace runs through its provider calls (NULL: tracing was off).
ALTER TABLE step_jobs ADD COLUMN traceparent text;
