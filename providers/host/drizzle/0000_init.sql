CREATE TABLE `accounts` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `audit` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`job_id` text,
	`program_digest` text,
	`model` text,
	`revision` text,
	`edits` text,
	`egress_bytes` integer,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `audit_at_idx` ON `audit` (`at`);--> statement-breakpoint
CREATE TABLE `edits` (
	`id` text PRIMARY KEY NOT NULL,
	`model` text NOT NULL,
	`name` text NOT NULL,
	`fragment` blob NOT NULL,
	`digest` text NOT NULL,
	`created_at` integer NOT NULL,
	`removed_at` integer
);
--> statement-breakpoint
CREATE TABLE `egress` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kid` text NOT NULL,
	`job_id` text NOT NULL,
	`model` text NOT NULL,
	`bytes` integer NOT NULL,
	`day` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `egress_day_kid_idx` ON `egress` (`day`,`kid`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`kid` text NOT NULL,
	`model` text NOT NULL,
	`revision` text NOT NULL,
	`program_digest` text NOT NULL,
	`request_digest` text NOT NULL,
	`program` blob NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`error` text,
	`estimated_egress` integer NOT NULL,
	`max_egress` integer,
	`timeout_ms` integer NOT NULL,
	`submitted_at` integer NOT NULL,
	`started_at` integer,
	`ended_at` integer
);
--> statement-breakpoint
CREATE INDEX `jobs_state_idx` ON `jobs` (`state`,`submitted_at`);--> statement-breakpoint
CREATE INDEX `jobs_kid_state_idx` ON `jobs` (`kid`,`state`);--> statement-breakpoint
CREATE TABLE `keys` (
	`kid` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`public_key` blob NOT NULL,
	`role` text NOT NULL,
	`label` text,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	`revoked_reason` text,
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `nonces` (
	`kid` text NOT NULL,
	`nonce` text NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`kid`, `nonce`)
);
--> statement-breakpoint
CREATE INDEX `nonces_expiry_idx` ON `nonces` (`expires_at`);--> statement-breakpoint
CREATE TABLE `results` (
	`job_id` text PRIMARY KEY NOT NULL,
	`saves` blob NOT NULL,
	`receipt` blob NOT NULL,
	`egress_bytes` integer NOT NULL,
	`stats` text,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `results_expiry_idx` ON `results` (`expires_at`);--> statement-breakpoint
CREATE TABLE `revisions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`model` text NOT NULL,
	`revision` text NOT NULL,
	`path` text NOT NULL,
	`activated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` blob NOT NULL
);
