-- dtctl SQLite task hub, schema version 6: the lease clock (dtctl/hub/sqlite/clock.py).

-- Lease expiry times and heartbeats are judged by CLOCK_BOOTTIME, which never steps, plus the offset
-- this boot's first process wrote here (one row: earlier boots' rows are deleted with it). A wall
-- clock stepped forward no longer expires healthy leases; one stepped back no longer keeps dead
-- workers' leases alive.
CREATE TABLE clock_anchors (
    boot_id     TEXT PRIMARY KEY,          -- /proc/sys/kernel/random/boot_id
    offset_us   INTEGER NOT NULL,          -- lease clock = CLOCK_BOOTTIME (µs) + offset_us
    anchored_at INTEGER NOT NULL           -- the wall clock when this boot's anchor was written
);

-- Visibility after a wall clock stepped back: a message that is not a durable timer is visible once
-- either clock reaches it (queries.sql, pick_instances), so leasing reads each message's kind; kind
-- joins the covering index that leasing scans.
DROP INDEX new_events_by_visible;
CREATE INDEX new_events_by_visible ON new_events (visible_at, instance_id, execution_id, kind);
