#!/usr/bin/python3
"""Recipe: export a torchvision ViT as a chain of children that graft can tap and cut.

usage: export_vit_chain.py OUT.pt [--tiny]
A ViT's forward() does work between its children (class token, position embedding,
taking token 0), so graft cannot run its children in order. This wraps those steps
into children of a Sequential: embed -> encoder -> cls -> head, checks the chain
against the original model, and saves it scripted. --tiny builds a small random ViT
(for a quick check); otherwise vit_b_16 with random weights (load yours instead).
"""
import sys

import torch
import torchvision


class Embed(torch.nn.Module):
    """Patchify (conv_proj) and prepend the class token: ViT.forward before the encoder."""

    def __init__(self, vit):
        super().__init__()
        self.conv_proj = vit.conv_proj
        self.class_token = vit.class_token
        self.patch_size = vit.patch_size
        self.hidden_dim = vit.hidden_dim

    def forward(self, x):
        n = x.shape[0]
        x = self.conv_proj(x)  # (n, hidden, h/p, w/p)
        x = x.reshape(n, self.hidden_dim, -1).permute(0, 2, 1)
        return torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)


class ClassToken(torch.nn.Module):
    def forward(self, x):
        return x[:, 0]


def main():
    out = sys.argv[1]
    if "--tiny" in sys.argv:
        vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                   hidden_dim=32, mlp_dim=64, num_classes=5)
        size = 32
    else:
        vit = torchvision.models.vit_b_16()
        size = 224
    vit.eval()
    chain = torch.nn.Sequential()
    chain.add_module("embed", Embed(vit))
    chain.add_module("encoder", vit.encoder)  # adds the position embedding itself
    chain.add_module("cls", ClassToken())
    chain.add_module("head", vit.heads)
    chain.eval()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        diff = float((chain(x) - vit(x)).abs().max())
    assert diff < 1e-5, f"the chain differs from the ViT by {diff}"
    torch.jit.script(chain).save(out)
    torch.jit.script(vit).save(out.replace(".pt", "_raw.pt"))
    print(f"saved {out} (children embed, encoder, cls, head; max diff to the ViT {diff:.2g}) "
          f"and the unchained {out.replace('.pt', '_raw.pt')}")


if __name__ == "__main__":
    main()
