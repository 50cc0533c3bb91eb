import { UNKNOWN_GPU_MODEL, type GpuDevice } from '../domain/gpu-device.js';

/** Leading words of a model name that say who made or sold it, not which GPU it is. */
const BRAND_WORDS = new Set(['nvidia', 'geforce', 'tesla']);

/** Parts of a model name that say how much or which memory, or which board form, not which GPU. */
const VARIANT_PART = /^(\d+(gb|g)|hbm\d*e?|gddr\d+x?|sxm\d*|pcie|nvl)$/i;

/**
 * The model label of one GPU model name, or undefined when nothing is left.
 *
 * Rule: split the name on spaces; drop the words NVIDIA, GeForce and Tesla; split every word on
 * "-"; drop the parts that are a memory size ("80GB", "40GB"), a memory type ("HBM3", "HBM2e",
 * "GDDR6X") or a board form ("SXM4", "SXM5", "PCIe", "NVL"); join what is left with "-",
 * lowercase, keep [a-z0-9-], and prefix "gpu-".
 *
 *   "NVIDIA H100 80GB HBM3" → gpu-h100      "NVIDIA A100-SXM4-40GB" → gpu-a100
 *   "NVIDIA GeForce RTX 4090" → gpu-rtx-4090 "NVIDIA L40S" → gpu-l40s
 *   "NVIDIA A10G" → gpu-a10g                "Tesla V100-SXM2-32GB" → gpu-v100
 */
export function gpuModelLabel(model: string): string | undefined {
  const parts = model
    .trim()
    .split(/\s+/)
    .filter((word) => !BRAND_WORDS.has(word.toLowerCase()))
    .flatMap((word) => word.split('-'))
    .filter((part) => part !== '' && !VARIANT_PART.test(part));
  const slug = parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return slug === '' ? undefined : `gpu-${slug}`;
}

/** A GPU the agent can hand to a container: an NVIDIA device with a device id. */
export function isUsableGpu(gpu: GpuDevice): boolean {
  return /nvidia/i.test(gpu.vendor) && gpu.id !== '';
}

/**
 * Labels derived from hardware: `gpu` when any usable GPU exists, plus one label per model. Sorted.
 * Labels say what the host is, so unhealthy GPUs count too (capacity is told separately, with
 * health); a GPU whose name nvidia-smi could not read gives no model label.
 */
export function hardwareLabels(gpus: readonly GpuDevice[]): string[] {
  const usable = gpus.filter(isUsableGpu);
  if (usable.length === 0) return [];
  const labels = ['gpu'];
  for (const gpu of usable) {
    if (gpu.model === UNKNOWN_GPU_MODEL) continue;
    const label = gpuModelLabel(gpu.model);
    if (label !== undefined) labels.push(label);
  }
  return mergeLabels(labels, []);
}

/** Hardware and configured labels together: trimmed, without empties, deduplicated, sorted. */
export function mergeLabels(hardware: readonly string[], configured: readonly string[]): string[] {
  const all = new Set<string>();
  for (const label of [...hardware, ...configured]) {
    const l = label.trim();
    if (l !== '') all.add(l);
  }
  return [...all].sort();
}
