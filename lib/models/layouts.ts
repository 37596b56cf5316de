// Importers for CBAM checkpoints in other layouts: key renames (and 1x1-conv -> Linear reshapes)
// over plain name -> tensor maps, into torch-attn's in-block CBAM (`layerX.Y.cbam.*`).
import { ErrorCode, codedError } from '../errors';
import { tensor } from '../tensor/tensor';
import type { Tensor } from '../tensor/tensor';

/** 'cbam-original': the CBAM authors' ResNet code (`layerX.Y.cbam.ChannelGate.mlp.{1,3}`,
 *  `...SpatialGate.spatial.{conv,bn}`); 'timm-cbam': timm's (`layerX.Y.se.channel.fc{1,2}` as
 *  1x1 convs, `...se.spatial.conv.{conv,bn}`). A DataParallel `module.` prefix is removed. */
export type CheckpointLayout = 'torch-attn' | 'cbam-original' | 'timm-cbam';
export const CHECKPOINT_LAYOUTS: readonly CheckpointLayout[] = ['torch-attn', 'cbam-original', 'timm-cbam'];

const RENAMES: Record<Exclude<CheckpointLayout, 'torch-attn'>, [RegExp, string][]> = {
  'cbam-original': [
    [/\.cbam\.ChannelGate\.mlp\.1\./, '.cbam.channel_attn.fc.0.'],
    [/\.cbam\.ChannelGate\.mlp\.3\./, '.cbam.channel_attn.fc.2.'],
    [/\.cbam\.SpatialGate\.spatial\.conv\./, '.cbam.spatial_attn.conv.'],
    [/\.cbam\.SpatialGate\.spatial\.bn\./, '.cbam.spatial_attn.bn.'],
  ],
  'timm-cbam': [
    [/\.se\.channel\.fc1\./, '.cbam.channel_attn.fc.0.'],
    [/\.se\.channel\.fc2\./, '.cbam.channel_attn.fc.2.'],
    [/\.se\.spatial\.conv\.conv\./, '.cbam.spatial_attn.conv.'],
    [/\.se\.spatial\.conv\.bn\./, '.cbam.spatial_attn.bn.'],
  ],
};

/** The tensors renamed into torch-attn's names; new tensors are made where a reshape is needed
 *  (the caller still owns and disposes the input tensors). */
export function convertLayout(tensors: Record<string, Tensor>, layout: CheckpointLayout, source: string): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [raw, t] of Object.entries(tensors)) {
    let name = raw.startsWith('module.') ? raw.slice('module.'.length) : raw;
    let value = t;
    if (layout !== 'torch-attn') {
      for (const [pattern, replacement] of RENAMES[layout]) {
        if (!pattern.test(name)) continue;
        name = name.replace(pattern, replacement);
        // timm's channel MLP is 1x1 convolutions: [out, in, 1, 1] -> Linear's [out, in].
        if (name.includes('.channel_attn.fc.') && name.endsWith('.weight') && t.shape.length === 4) {
          value = tensor(t.data() as Float32Array, t.shape.slice(0, 2), { dtype: t.dtype });
        }
        break;
      }
    }
    if (name in out) {
      throw codedError(ErrorCode.CHECKPOINT, `${source}: '${raw}' and another entry both become '${name}' in torch-attn's names`);
    }
    out[name] = value;
  }
  return out;
}
