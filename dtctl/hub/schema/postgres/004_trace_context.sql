-- dtctl postgres task hub, schema version 4: the W3C trace context of the caller that started an instance.

-- A traceparent header (00-<trace id>-<span id>-<flags>), stored only when the caller had a current
-- span; tracing workers read it once per instance to parent the instance's spans (dtctl.observe).
-- Sub-orchestrations leave it NULL: their trace is their parent's.
ALTER TABLE instances ADD COLUMN trace_context TEXT;
