"""--device and --precision of the Python peers run by bench/gpu.sh, in one place: the options,
the device, autocast for the forward passes, and a GradScaler (active for fp16 only)."""
import torch


def add_args(parser):
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (bench/gpu.sh)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="forward passes under autocast in this precision (fp16 with a GradScaler)")


class Peer:
    def __init__(self, args):
        self.dev = torch.device(args.device)
        self.low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
        self.scaler = torch.cuda.amp.GradScaler(enabled=args.precision == "fp16")

    def autocast(self):
        # CPU autocast in torch 1.13 accepts only bfloat16, even when disabled.
        return torch.autocast(self.dev.type, dtype=self.low or torch.bfloat16, enabled=self.low is not None)
