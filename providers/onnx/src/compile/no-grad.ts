/** Metadata key marking an ONNX node whose outputs carry no gradient (the `detach` op): the backward pass treats them as constants. */
export const NO_GRAD_KEY = 'weft.no_grad'
