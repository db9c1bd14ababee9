"""Control: the loss stays on the device and is read every 20 steps; evaluation after
training prints freely (outside the training steps)."""

import torch
from torch import nn

LOG_EVERY = 20
device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
x = torch.randn(4096, 32, device=device)
y = (x[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

running = torch.zeros((), device=device)
step = 0
for _epoch in range(2):
    for start in range(0, len(x), 64):
        xb, yb = x[start:start + 64], y[start:start + 64]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        running += loss.detach()
        step += 1
        if step % LOG_EVERY == 0:
            print(f"step {step}: loss {running.item() / LOG_EVERY:.4f}")
            running.zero_()

with torch.no_grad():
    predictions = model(x).argmax(dim=1)
    for k in range(10):
        print("sample", k, predictions[k].item(), float(model(x[k:k + 1])[0, 1]))
    print("accuracy", (predictions == y).float().mean())
