// The engine's public surface: tensors and the tape, fused ops, memory-saving ops, AdamW, and the kernel-set switch.
export * from "./tensor.js";
export * from "./ops.js";
export * from "./memory.js";
export * from "./optim.js";
export { kernels, useKernels, nativeKernels, referenceSet, syncKernels, webgpuKernels } from "./backend.js";
export type { Kernels, KernelSet } from "./kernels.js";
