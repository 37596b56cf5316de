// The architectures a run configuration names (model.arch); no library code behind it, so the
// CLI can list them without loading the native addon.
export const ARCHS = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'vgg11', 'vgg13', 'vgg16', 'vgg19', 'cbamcnn'] as const;
export type Arch = (typeof ARCHS)[number];
