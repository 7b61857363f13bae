/**
 * How fast each model's engine runs Programs, in cost units (core's `programCost`) per millisecond of engine time,
 * learned from completed jobs (or fixed by the operator), so a session or training Program that cannot finish
 * within its time limit is refused before it runs. Training and plain runs are learned apart (a backward costs a
 * different multiple of the forward than the cost model assumes). The fastest rate observed is used: the estimate is
 * a lower bound on the run time, so only Programs that surely cannot fit are refused.
 */

export type RunKind = 'train' | 'plain'

/** runs shorter than this say more about timer resolution and overheads than about speed */
const MIN_OBSERVED_MS = 5

export class EngineSpeed {
  private readonly best = new Map<string, number>()

  constructor (private readonly fixed: number | null) {}

  observe (model: string, kind: RunKind, cost: number, runMs: number): void {
    if (!(runMs >= MIN_OBSERVED_MS) || !(cost > 0)) return
    const key = `${kind}\n${model}`
    const rate = cost / runMs
    if (rate > (this.best.get(key) ?? 0)) this.best.set(key, rate)
  }

  /** cost units per ms for this model and kind (null when neither fixed nor observed yet) */
  rate (model: string, kind: RunKind): number | null {
    return this.fixed ?? this.best.get(`${kind}\n${model}`) ?? null
  }

  /** lower bound of the engine time a Program of this cost needs, or null when unknown */
  estimateMs (model: string, kind: RunKind, cost: number): number | null {
    const rate = this.rate(model, kind)
    return rate === null || rate <= 0 ? null : cost / rate
  }
}
