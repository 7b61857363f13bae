ALTER TABLE `jobs` ADD `node` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `lease_until` integer;