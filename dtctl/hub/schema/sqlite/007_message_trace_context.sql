-- dtctl SQLite task hub, schema version 7: the W3C trace context of whoever sent a message.
-- Self-contained (ADD COLUMN only), so it can be renumbered.

-- A traceparent header (00-<trace id>-<span id>-<flags>) of the sender's current span, stored only
-- when the sender had one: a client's raise_event (new_events) or signal_entity (entity_inbox). A
-- tracing worker links the span of the episode that consumes the event to it, and parents the entity
-- operation's span to the signaller's span (dtctl.observe). Messages queued by orchestrations leave it
-- NULL: their trace is derived from the sending instance.
ALTER TABLE new_events ADD COLUMN trace_context TEXT;
ALTER TABLE entity_inbox ADD COLUMN trace_context TEXT;
