"""PyTorch peer of the trainer's steps, for scripts/peer_bench.sh.

The same work as trainer/benches/peer.rs, on the CPU at batch 64:
- classifier step: the default n+1 net (conv 5x5 x16 -> maxpool 2 -> relu ->
  conv 5x5 x32 -> maxpool 2 -> relu -> fc 512->128 -> relu -> dropout 0.25 ->
  fc 128->11, 80,331 parameters), class-weighted cross-entropy, Adam
  (lr 2e-3), random pixels normalised as in ood_core::input;
- generator step: the default conditional generator (z 100 + condition 11 ->
  256 -> 512, latent and condition fed into every layer, dropout 0.2,
  7x7 and 14x14 heads bilinearly up-sampled to 28x28, sigmoid) inverting the
  frozen classifier with the seed's loss (500 KL + 500 CE + 6000 mean pairwise
  cosine + 10 ||Gram - I||^2 / N^2 of the penultimate features), Adam (lr 1e-3,
  betas 0.5/0.999).
Prints one JSON line per step: samples/s over about SECONDS of steps after a
warm-up.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 64
MEAN, STD = 0.1307, 0.3081


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(512, 128)
        self.fc2 = nn.Linear(128, 11)
        self.drop = nn.Dropout(0.25)

    def forward(self, x):
        h = F.relu(F.max_pool2d(self.conv1(x), 2))
        h = F.relu(F.max_pool2d(self.conv2(h), 2))
        feat = self.fc1(h.flatten(1))
        return self.fc2(self.drop(F.relu(feat))), feat


def bilinear(s):
    # [784, s*s]: up-sampling from s x s to 28x28, pixel centres aligned, borders clamped
    m = torch.zeros(784, s * s)
    scale = s / 28.0
    for oy in range(28):
        for ox in range(28):
            sy = min(max((oy + 0.5) * scale - 0.5, 0.0), s - 1.0)
            sx = min(max((ox + 0.5) * scale - 0.5, 0.0), s - 1.0)
            y0, x0 = int(sy), int(sx)
            y1, x1 = min(y0 + 1, s - 1), min(x0 + 1, s - 1)
            fy, fx = sy - y0, sx - x0
            for (yy, xx, w) in ((y0, x0, (1 - fy) * (1 - fx)), (y0, x1, (1 - fy) * fx),
                                (y1, x0, fy * (1 - fx)), (y1, x1, fy * fx)):
                m[oy * 28 + ox, yy * s + xx] += w
    return m


class Generator(nn.Module):
    def __init__(self, latent=100, h1=256, h2=512):
        super().__init__()
        c = 11 + latent
        self.fc1 = nn.Linear(latent + 11, h1)
        self.fc2 = nn.Linear(h1 + c, h2)
        self.fc7 = nn.Linear(h2 + c, 49)
        self.fc14 = nn.Linear(h2 + c, 196)
        self.drop = nn.Dropout(0.2)
        self.register_buffer("up7", bilinear(7))
        self.register_buffer("up14", bilinear(14))

    def forward(self, z, p):
        zc = torch.cat([z, p], 1)
        h = self.drop(F.leaky_relu(self.fc1(zc), 0.2))
        h = self.drop(F.leaky_relu(self.fc2(torch.cat([h, zc], 1)), 0.2))
        hc = torch.cat([h, zc], 1)
        o = self.fc7(hc) @ self.up7.t() + self.fc14(hc) @ self.up14.t()
        return torch.sigmoid(o).view(-1, 1, 28, 28)


def inversion_loss(logits, feats, p, y):
    n = logits.shape[0]
    logq = F.log_softmax(logits, 1)
    kl = (p * p.clamp(1e-12, 1).log() - p * logq).sum() / n
    ce = F.nll_loss(logq, y)
    f = feats / (feats.norm(dim=1, keepdim=True) + 1e-8)
    g = f @ f.t()
    eye = torch.eye(n)
    cos = (g.sum() - g.diagonal().sum()) / (n * (n - 1))
    ortho = ((g - eye) ** 2).sum() / (n * n)
    return 500 * kl + 500 * ce + 6000 * cos + 10 * ortho


def timed(seconds, step):
    for _ in range(10):
        step()
    t0 = time.perf_counter()
    n = 0
    while n < 5 or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * BATCH / (time.perf_counter() - t0), n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = (torch.randint(0, 256, (BATCH, 1, 28, 28)).float() / 255 - MEAN) / STD
    y = torch.arange(BATCH) % 11
    w = torch.ones(11)

    def cls_step():
        opt.zero_grad(set_to_none=True)
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y, weight=w)
        loss.backward()
        opt.step()

    model.train()
    sps, n = timed(a.seconds, cls_step)
    print(json.dumps({"engine": "pytorch " + torch.__version__, "step": "classifier",
                      "threads": str(a.threads), "samples_per_sec": round(sps, 1), "steps": n}))

    frozen = Classifier()
    frozen.eval()
    for q in frozen.parameters():
        q.requires_grad_(False)
    gen = Generator()
    gopt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))

    def gen_step():
        yy = torch.randint(0, 10, (BATCH,))
        r = torch.randn(BATCH, 10)
        r[torch.arange(BATCH), yy] += 5
        p = torch.cat([F.softmax(r, 1), torch.zeros(BATCH, 1)], 1)
        z = torch.randn(BATCH, 100)
        gopt.zero_grad(set_to_none=True)
        px = gen(z, p)
        logits, feats = frozen((px - MEAN) / STD)
        inversion_loss(logits, feats, p, yy).backward()
        gopt.step()

    gen.train()
    sps, n = timed(a.seconds, gen_step)
    print(json.dumps({"engine": "pytorch " + torch.__version__, "step": "generator",
                      "threads": str(a.threads), "samples_per_sec": round(sps, 1), "steps": n}))


if __name__ == "__main__":
    main()
