-- The scheduler places replicas: it writes each replica lease with the
-- worker it chose (a new epoch on every move), and workers run what is
-- assigned to them. A draining worker keeps nothing and takes nothing.
ALTER TABLE workers ADD COLUMN draining boolean NOT NULL DEFAULT false;
