"""Block-level conformance: network blocks of the lectures' CNNs (VGG, ResNet, Inception, AlexNet, the
sentence CNN) as data (model), composed from the spec's ops on any backend, with an error bound propagated
from the per-op bounds (bounds), case strategies (strategies) and a full-profile case source (source);
registry_entries.block_ops() gives their registry entries; resnet_small trains a small ResNet end to end."""
