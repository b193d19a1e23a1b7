-- Epochs come from one sequence, so a lease removed and created again
-- never repeats an epoch a stale holder might still present.
CREATE SEQUENCE replica_lease_epochs;
SELECT setval('replica_lease_epochs', GREATEST((SELECT max(epoch) FROM replica_leases), 1));
