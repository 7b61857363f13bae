CREATE TABLE `adapters` (
	`id` text PRIMARY KEY NOT NULL,
	`kid` text NOT NULL,
	`name` text NOT NULL,
	`model` text NOT NULL,
	`revision` text NOT NULL,
	`params` text NOT NULL,
	`file` text NOT NULL,
	`bytes` integer NOT NULL,
	`digest` text NOT NULL,
	`job_id` text,
	`program_digest` text,
	`training` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `adapters_kid_name_idx` ON `adapters` (`kid`,`name`);