CREATE TABLE `train_checkpoints` (
	`job_id` text PRIMARY KEY NOT NULL,
	`step` integer NOT NULL,
	`state` blob NOT NULL,
	`updated_at` integer NOT NULL
);
