/**
 * The shared tail of every ONNX face detector: letterbox the image into the network's input,
 * run the session, let the family decode its outputs (boxes in network-input pixels), map them
 * back to the image (unletterbox), then score filter + NMS (postprocess). A detector family
 * supplies its input layout and its decoder; see blazeface.ts and yunet.ts.
 */
import type { Mat } from '../../core/cv.js';
import { f32, type OrtSession, type WireTensor } from '../inference/inference-worker.js';
import { letterboxTensor, type TensorLayout, unletterbox } from './letterbox.js';
import { type DetectorTuning, postprocess } from './nms.js';
import type { DetectorName, FaceDetection, FaceDetector } from './types.js';

export interface InputSize {
  width: number;
  height: number;
}

export abstract class OnnxDetector implements FaceDetector {
  abstract readonly name: DetectorName;
  readonly inputWidth: number;
  readonly inputHeight: number;
  readonly provider: string;

  protected constructor(
    protected readonly session: OrtSession,
    readonly model: string,
    protected readonly tuning: DetectorTuning,
    size: InputSize,
    private readonly layout: TensorLayout,
  ) {
    this.inputWidth = size.width;
    this.inputHeight = size.height;
    this.provider = session.provider;
  }

  /** The family's decoder: raw detections in network-input pixels, score threshold applied. */
  protected abstract decode(outputs: Record<string, WireTensor>): FaceDetection[];

  async detect(image: Mat): Promise<FaceDetection[]> {
    const { tensor, lb } = await letterboxTensor(image, this.inputWidth, this.inputHeight, this.layout, 0);
    const name = this.session.inputs[0]?.name ?? 'input';
    const dims =
      this.layout.kind === 'nchw-bgr'
        ? [1, 3, this.inputHeight, this.inputWidth]
        : [1, this.inputHeight, this.inputWidth, 3];
    const { outputs } = await this.session.run({ [name]: f32(tensor, dims) });
    return postprocess(
      this.decode(outputs).map((d) => unletterbox(lb, d)),
      { ...this.tuning, width: lb.srcW, height: lb.srcH },
    );
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
