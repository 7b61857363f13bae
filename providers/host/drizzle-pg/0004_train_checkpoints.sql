CREATE TABLE "train_checkpoints" (
	"job_id" text PRIMARY KEY NOT NULL,
	"step" bigint NOT NULL,
	"state" "bytea" NOT NULL,
	"updated_at" bigint NOT NULL
);
