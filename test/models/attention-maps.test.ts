// model.attentionMaps(x): every attention module's maps in a whole model, by module name, from one
// eval-mode forward pass off the main thread.
import { describe, expect, it } from 'vitest';
import { CBAMCNN, ResNetCBAM, randn, resnet, tensor, vgg } from '../../lib/index';

describe('model.attentionMaps', () => {
  it('names every module in forward order, with the shapes of its maps', async () => {
    const model = new ResNetCBAM({ depth: 18, numClasses: 10 });
    const maps = await model.attentionMaps(randn([3, 3, 32, 32]));
    expect(Object.keys(maps)).toEqual(['cbam_layer1', 'cbam_layer2', 'cbam_layer3', 'cbam_layer4']);
    expect(maps.cbam_layer1.channel.shape).toEqual([3, 64]);
    expect(maps.cbam_layer1.spatial.shape).toEqual([3, 1, 32, 32]);
    expect(maps.cbam_layer4.spatial.shape).toEqual([3, 1, 4, 4]);
    for (const t of [maps.cbam_layer2.channel, maps.cbam_layer3.spatial]) {
      const v = t.toFloat32Array();
      expect(Math.min(...v)).toBeGreaterThan(0);
      expect(Math.max(...v)).toBeLessThan(1); // sigmoid gates
    }
    const nam = await resnet({ depth: 18, attention: 'nam' }).attentionMaps(randn([1, 3, 32, 32]));
    expect(Object.keys(nam)).toEqual(['layer1.0.nam', 'layer1.1.nam', 'layer2.0.nam', 'layer2.1.nam', 'layer3.0.nam', 'layer3.1.nam', 'layer4.0.nam', 'layer4.1.nam']);
    expect(Object.keys(await new CBAMCNN().attentionMaps(randn([1, 3, 32, 32])))).toEqual(['cbam1', 'cbam2', 'cbam3']);
    expect(Object.keys(await vgg({ depth: 11 }).attentionMaps(randn([1, 3, 32, 32])))).toEqual(['cbam_stage1', 'cbam_stage2', 'cbam_stage3', 'cbam_stage4', 'cbam_stage5']);
    expect(await resnet({ depth: 18, attention: 'none' }).attentionMaps(randn([1, 3, 32, 32]))).toEqual({});
  });

  it('is each image\'s own (eval mode: no batch statistics), leaves the mode as it was, and checks its input', async () => {
    const model = new CBAMCNN();
    expect(model.training).toBe(true);
    const x = randn([4, 3, 32, 32]);
    const all = await model.attentionMaps(x);
    expect(model.training).toBe(true);
    // The first image alone has the maps it has in the batch.
    const one = await model.attentionMaps(tensor(x.toFloat32Array().slice(0, 3 * 32 * 32), [1, 3, 32, 32]));
    expect(one.cbam2.spatial.shape).toEqual([1, 1, 8, 8]);
    const unbatched = await model.attentionMaps(tensor(x.toFloat32Array().slice(0, 3 * 32 * 32), [3, 32, 32]));
    expect(Array.from(unbatched.cbam2.spatial.toFloat32Array())).toEqual(Array.from(one.cbam2.spatial.toFloat32Array()));
    const inBatch = all.cbam2.spatial.toFloat32Array().subarray(0, 8 * 8);
    const alone = one.cbam2.spatial.toFloat32Array();
    expect(Math.max(...alone.map((v, i) => Math.abs(v - inBatch[i])))).toBeLessThan(1e-5);
    expect(Array.from(all.cbam2.spatial.toFloat32Array().subarray(8 * 8, 2 * 8 * 8))).not.toEqual(Array.from(inBatch));
    await expect(model.attentionMaps(randn([1, 4, 32, 32]))).rejects.toThrow(/channels/);
    await expect(model.attentionMaps('x' as never)).rejects.toThrow(/attentionMaps\(x\)/);
  });
});
