// Attention modules on their own: shapes, maps, passthrough identity, NAM's variants, ECA's
// kernel size, and the errors for bad options and inputs.
import { describe, expect, it } from 'vitest';
import { CBAM, ECA, NAM, SE, randn, tensor, zeros } from '../../lib';

describe('CBAM', () => {
  it('keeps the input shape and returns channel and spatial maps in (0, 1)', () => {
    const cbam = new CBAM({ channels: 32, ratio: 8, kernelSize: 3 });
    const x = randn([2, 32, 6, 5]);
    expect(cbam.forward(x).shape).toEqual([2, 32, 6, 5]);
    const maps = cbam.attentionMaps(x);
    expect(maps.channel.shape).toEqual([2, 32]);
    expect(maps.spatial.shape).toEqual([2, 1, 6, 5]);
    for (const v of maps.spatial.data() as Float32Array) expect(v > 0 && v < 1).toBe(true);
    const names = cbam.namedParameters().map((p) => `${p.name}:${p.shape.join('x')}`);
    expect(names).toEqual(['channel_attn.fc.0.weight:4x32', 'channel_attn.fc.2.weight:32x4', 'spatial_attn.conv.weight:1x2x3x3']);
  });

  it('hidden width is at least 1 when ratio exceeds channels / 1', () => {
    const cbam = new CBAM({ channels: 8, ratio: 8 });
    expect(cbam.namedParameters()[0].shape).toEqual([1, 8]);
  });

  it("init 'passthrough' is exactly the identity, and trainable", () => {
    const cbam = new CBAM({ channels: 16, init: 'passthrough' });
    const x = randn([3, 16, 7, 7]);
    expect(cbam.forward(x).data()).toEqual(x.data());
    const gate = cbam.namedParameters().find((p) => p.name === 'gate');
    expect(gate).toEqual({ name: 'gate', shape: [1], requiresGrad: true });
    expect(cbam.parameterCount({ trainableOnly: true })).toBe(cbam.parameterCount());
  });
});

describe('NAM', () => {
  it('has the original layout and weights |gamma| / sum |gamma|', () => {
    const nam = new NAM({ channels: 8 });
    expect(nam.namedBuffers().map((b) => b.name)).toEqual([
      'Channel_Att.bn2.running_mean', 'Channel_Att.bn2.running_var', 'Channel_Att.bn2.num_batches_tracked',
    ]);
    const maps = nam.eval().attentionMaps(randn([2, 8, 4, 4]));
    const scale = maps.channelScale.data() as Float32Array;
    expect(scale.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    expect(nam.namScalingFactors()).toEqual(['Channel_Att.bn2.weight']);
  });

  it('namSparsityPenalty is lambda * sum |gamma| over the NAM gammas only', async () => {
    const nam = new NAM({ channels: 4 });
    const gamma = [0.5, -1.5, 2, -0.25];
    const sd = nam.stateDict();
    sd['Channel_Att.bn2.weight'] = tensor(gamma);
    await nam.loadStateDict(sd);
    expect(nam.namSparsityPenalty(0.1)).toBeCloseTo(0.1 * 4.25, 6);
    expect(nam.namSparsityPenalty()).toBeCloseTo(1e-4 * 4.25, 9);
    expect(new CBAM({ channels: 8, ratio: 2 }).namSparsityPenalty(1)).toBe(0);
    expect(() => nam.namSparsityPenalty(-1)).toThrow(RangeError);
  });

  it('the pixel variant adds a BatchNorm over H*W positions and checks the input size', () => {
    const nam = new NAM({ channels: 4, pixelSize: 9 });
    expect(nam.namedParameters().map((p) => `${p.name}:${p.shape}`)).toContain('Pixel_Att.bn2.weight:9');
    expect(nam.forward(randn([2, 4, 3, 3])).shape).toEqual([2, 4, 3, 3]);
    expect(() => nam.forward(randn([2, 4, 4, 4]))).toThrow(/built for 9 positions \(H\*W\) but the input has 4x4/);
    expect(nam.namScalingFactors()).toEqual(['Channel_Att.bn2.weight', 'Pixel_Att.bn2.weight']);
  });

  it('detachWeights gives the same forward values', () => {
    const a = new NAM({ channels: 6 }).eval();
    const b = new NAM({ channels: 6, detachWeights: true }).eval();
    const x = randn([2, 6, 3, 3]);
    expect(b.forward(x).data()).toEqual(a.forward(x).data());
  });
});

describe('SE and ECA', () => {
  it('SE: fc.0 / fc.2 without bias, channel weights B x C', () => {
    const se = new SE({ channels: 64 });
    expect(se.namedParameters().map((p) => `${p.name}:${p.shape.join('x')}`)).toEqual(['fc.0.weight:4x64', 'fc.2.weight:64x4']);
    expect(se.attentionMaps(randn([2, 64, 3, 3])).channel.shape).toEqual([2, 64]);
  });

  it.each([
    [64, 3],
    [128, 5],
    [256, 5],
    [512, 5],
    [2048, 7],
  ])('ECA picks kernel size from %d channels: %d', (channels, k) => {
    const eca = new ECA({ channels });
    expect(eca.namedParameters()[0].shape).toEqual([1, 1, k]);
    expect(eca.forward(randn([1, channels, 2, 2])).shape).toEqual([1, channels, 2, 2]);
  });
});

describe('EXPECTED FAILURE - bad module options and inputs', () => {
  it.each([
    ['missing channels', () => new CBAM({} as never), TypeError, /Expected an integer for CBAM options.channels but received undefined/],
    ['zero channels', () => new SE({ channels: 0 }), RangeError, /channels must be at least 1/],
    ['even kernel size', () => new CBAM({ channels: 8, kernelSize: 6 }), RangeError, /kernelSize must be odd/],
    ['ratio above channels', () => new CBAM({ channels: 8, ratio: 9 }), RangeError, /ratio must be from 1 to the channel count \(8\), got 9/],
    ['unknown init', () => new CBAM({ channels: 8, init: 'zeros' as never }), RangeError, /init must be one of 'default', 'passthrough'/],
    ['an option of another kind', () => new SE({ channels: 8, kernelSize: 3 } as never), TypeError, /Unknown option 'kernelSize' in SE options/],
    ['wrong channel count', () => new CBAM({ channels: 8, ratio: 2 }).forward(zeros([1, 4, 2, 2])), RangeError, /built for 8 channels but the input has 4/],
    ['wrong rank', () => new ECA({ channels: 8 }).forward(zeros([8, 2, 2])), RangeError, /expects a 4-D input/],
  ])('%s', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });
});

describe('CBAM flavours', () => {
  it('mlpBias, spatialNorm and spatial: false change the module tree as the other layouts have it', () => {
    const original = new CBAM({ channels: 32, mlpBias: true, spatialPoolOrder: 'max-mean', spatialNorm: 'bn' });
    const names = original.namedParameters().map((p) => p.name);
    expect(names).toEqual([
      'channel_attn.fc.0.weight', 'channel_attn.fc.0.bias', 'channel_attn.fc.2.weight', 'channel_attn.fc.2.bias',
      'spatial_attn.conv.weight', 'spatial_attn.bn.weight', 'spatial_attn.bn.bias',
    ]);
    expect(Array.from(original.stateDict()['spatial_attn.bn.weight'].data() as Float32Array)).toEqual([0]);
    const channelOnly = new CBAM({ channels: 32, spatial: false, poolTypes: ['lp', 'lse'] });
    expect(channelOnly.namedParameters().map((p) => p.name)).toEqual(['channel_attn.fc.0.weight', 'channel_attn.fc.2.weight']);
    const x = randn([2, 32, 4, 4]);
    expect(Object.keys(channelOnly.attentionMaps(x))).toEqual(['channel']);
    expect(channelOnly.forward(x).shape).toEqual([2, 32, 4, 4]);
  });

  it('the pool types change the channel weights (lp and lse are not avg and max)', async () => {
    const a = new CBAM({ channels: 16, ratio: 4, spatial: false });
    const b = new CBAM({ channels: 16, ratio: 4, spatial: false, poolTypes: ['avg', 'max', 'lp', 'lse'] });
    // Positive first-layer weights: random ones can leave every hidden unit at ReLU's zero for
    // these positive descriptors, and then no pool type would show.
    const weights = {
      'channel_attn.fc.0.weight': tensor(new Float32Array(4 * 16).fill(0.1), [4, 16]),
      'channel_attn.fc.2.weight': tensor(Float32Array.from({ length: 16 * 4 }, (_, i) => ((i % 7) - 3) / 10), [16, 4]),
    };
    await a.loadStateDict(weights);
    await b.loadStateDict(weights);
    const x = tensor(Float32Array.from({ length: 16 * 9 }, (_, i) => Math.sin(i)), [1, 16, 3, 3]);
    expect(b.attentionMaps(x).channel.data()).not.toEqual(a.attentionMaps(x).channel.data());
  });

  it.each([
    [['avg', 'avg'], /lists a pool type twice/],
    [['median'], /poolTypes\[0\] must be one of 'avg', 'max', 'lp', 'lse', got 'median'/],
    [[], /at least one pool type/],
  ])('EXPECTED FAILURE - poolTypes %j', (poolTypes, message) => {
    expect(() => new CBAM({ channels: 8, ratio: 2, poolTypes: poolTypes as never })).toThrow(RangeError);
    expect(() => new CBAM({ channels: 8, ratio: 2, poolTypes: poolTypes as never })).toThrow(message);
  });

  it('EXPECTED FAILURE - spatialNorm and spatialPoolOrder take only their values', () => {
    expect(() => new CBAM({ channels: 8, ratio: 2, spatialNorm: 'ln' as never })).toThrow(/spatialNorm must be one of 'none', 'bn'/);
    expect(() => new CBAM({ channels: 8, ratio: 2, spatialPoolOrder: 'avg-max' as never })).toThrow(/spatialPoolOrder must be one of/);
    expect(() => new CBAM({ channels: 8, ratio: 2, mlpBias: 1 as never })).toThrow(TypeError);
  });
});
