/** The ONNX protobuf schema (onnx-buf, ONNX 1.20: keeps metadata_props) re-exported under one namespace. */
import * as onnx from 'onnx-buf'
export { onnx }
