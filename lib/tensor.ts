/**
 * The TensorFlow.js types that the harness's API names, as aliases of this
 * package, so that its documentation is self-contained (`deno doc --lint
 * mod.ts`): a `Tensor2D` here is exactly `tf.Tensor2D` of
 * `@tensorflow/tfjs`, and values pass between the two freely.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";

/** A tensor of any rank (`tf.Tensor`). */
export type Tensor = tf.Tensor;
/** A rank-0 tensor (`tf.Scalar`). */
export type Scalar = tf.Scalar;
/** A rank-1 tensor (`tf.Tensor1D`). */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 tensor (`tf.Tensor2D`): rows × columns, e.g. a batch of features. */
export type Tensor2D = tf.Tensor2D;
/** A rank-3 tensor (`tf.Tensor3D`), e.g. batch × tokens × features. */
export type Tensor3D = tf.Tensor3D;
/** A rank-4 tensor (`tf.Tensor4D`), e.g. a batch of images (NHWC). */
export type Tensor4D = tf.Tensor4D;
/** A trainable tensor (`tf.Variable`). */
export type Variable = tf.Variable;
/** Tensors by name (`tf.NamedTensorMap`). */
export type NamedTensorMap = tf.NamedTensorMap;
/** A tensor's element type (`tf.DataType`). */
export type DataType = tf.DataType;
