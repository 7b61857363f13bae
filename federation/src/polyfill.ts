/**
 * `Promise.withResolvers` for Node 20: js-libp2p 3 calls it at runtime. Imported first by every federation module
 * that loads libp2p (Node 22 has it natively, then this does nothing).
 */
interface Resolvers<T> { promise: Promise<T>; resolve: (value: T | PromiseLike<T>) => void; reject: (reason?: unknown) => void }

const PromiseWith = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }

if (typeof PromiseWith.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> (): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve']
      let reject!: Resolvers<T>['reject']
      const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
  })
}

export {}
