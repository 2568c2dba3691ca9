-- Namespace experiments beside container ones.
ALTER TABLE bulk_experiments ADD COLUMN experiment_type text NOT NULL DEFAULT 'container';
