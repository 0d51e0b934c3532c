#!/usr/bin/python3
"""A PyTorch replica of `graft adapt --method mmd` on dann_mnist (MNIST -> MNIST-M, first 10k
of each, SGD 0.01 momentum 0.9 with the DANN annealing) that logs what graft's adapt does
not: the mean feature norm at the tap and the share of dead (always-zero) units, every 50
steps. Diagnosis only (docs/RESULTS.md, DAN collapse); no reported accuracy comes from it.
detach=1 is graft's old bandwidth (held fixed in the gradient), detach=0 the current one.

usage: mmd_replica.py [tap=flatten|fc1|fc2] [tw=1] [detach=0|1] [steps=1200] [seed=1]"""
import sys, struct, numpy as np, torch, torch.nn as nn, torch.nn.functional as F, json
torch.set_num_threads(1)
import os
C = os.environ.get('GRAFT_DATA', os.path.expanduser('~/.cache/graft')) + '/'
def idx(p):
    b = open(p,'rb').read(); nd = b[3]; dims = struct.unpack('>'+'I'*nd, b[4:4+4*nd])
    return np.frombuffer(b, np.uint8, offset=4+4*nd).reshape(dims)
args = dict(a.split('=') for a in sys.argv[1:])
tap = args.get('tap','flatten'); tw = float(args.get('tw','1')); detach = args.get('detach','1')=='1'
unb = args.get('unbiased','0')=='1'; steps = int(args.get('steps','300')); seed=int(args.get('seed','1'))
tgt = args.get('target','mnistm')
torch.manual_seed(seed)
xs = torch.tensor(idx(C+'mnist/train-images-idx3-ubyte')[:10000]).float().div(255).unsqueeze(1).expand(-1,3,-1,-1)
ys = torch.tensor(idx(C+'mnist/train-labels-idx1-ubyte')[:10000]).long()
xt = torch.tensor(idx(C+tgt+'/train-images-idx4-ubyte')[:10000]).float().div(255).permute(0,3,1,2)
xte = torch.tensor(idx(C+tgt+'/t10k-images-idx4-ubyte')[:2000]).float().div(255).permute(0,3,1,2)
yte = torch.tensor(idx(C+tgt+'/t10k-labels-idx1-ubyte')[:2000]).long()
feat = nn.Sequential(nn.Conv2d(3,32,5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32,48,5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
fc1 = nn.Sequential(nn.Linear(768,100), nn.ReLU()); fc2 = nn.Sequential(nn.Linear(100,100), nn.ReLU()); fc3 = nn.Linear(100,10)
layers = [('flatten',feat),('fc1',fc1),('fc2',fc2),('fc3',fc3)]
params = [p for _,m in layers for p in m.parameters()]
opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
def mmd(fs, ft, mults=(0.25,.5,1,2,4)):
    x = torch.cat([fs, ft]); n = x.shape[0]; ns = fs.shape[0]
    x = x - x.mean(0, keepdim=True).detach()
    sq = (x*x).sum(1); d2 = (sq[:,None]+sq[None,:]-2*x@x.t()).clamp_min(0)
    base = d2.sum()/(n*n-n)
    if detach: base = base.detach()
    base = base.clamp_min(1e-12)
    k = sum(torch.exp(-d2/(base*m)) for m in mults)
    kss = k[:ns,:ns]; ktt = k[ns:,ns:]; kst = k[:ns, ns:]
    if unb:
        return (kss.sum()-kss.diag().sum())/(ns*(ns-1)) + (ktt.sum()-ktt.diag().sum())/((n-ns)*(n-ns-1)) - 2*kst.mean()
    return kss.mean()+ktt.mean()-2*kst.mean()
def forward(x):
    f = None; h = x
    for name, m in layers:
        h = m(h)
        if name == tap: f = h
    return f, h
def evaluate():
    with torch.no_grad():
        f, z = forward(xte)
        return (z.argmax(1)==yte).float().mean().item(), f.norm(dim=1).mean().item(), (f.abs().sum(0)==0).float().mean().item()
g = torch.Generator().manual_seed(seed)
ps = torch.randperm(10000, generator=g); pt = torch.randperm(10000, generator=g)
for step in range(steps+1):
    if step % 50 == 0:
        acc, nt, dead = evaluate()
        print(json.dumps(dict(step=step, target_acc=round(acc,4), target_feat_norm=round(nt,3), dead_units=round(dead,3))), flush=True)
    if step == steps: break
    p = step/steps; lr = 0.01/(1+10*p)**0.75
    for gp in opt.param_groups: gp['lr']=lr
    i = (step*64) % 9984
    bs = xs[ps[i:i+64]]; bys = ys[ps[i:i+64]]; bt = xt[pt[i:i+64]]
    f, z = forward(torch.cat([bs, bt]))
    f = f.flatten(1)
    cls = F.cross_entropy(z[:64], bys); ad = tw*mmd(f[:64], f[64:])
    opt.zero_grad(); (cls+ad).backward(); opt.step()
    if step % 50 == 0: print(json.dumps(dict(step=step, cls=round(cls.item(),4), mmd=round(ad.item(),5), src_feat_norm=round(f[:64].norm(dim=1).mean().item(),3))), flush=True)
