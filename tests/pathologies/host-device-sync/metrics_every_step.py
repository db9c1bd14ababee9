"""Accuracy counted on the host and the loss printed with an f-string, every step."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def train_epoch(model, loader, optimizer, device):
    correct, seen, best = 0, 0, float("inf")
    for step, (xb, yb) in enumerate(loader):
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        loss.backward()
        optimizer.step()
        correct += (logits.argmax(dim=1) == yb).sum()
        seen += len(yb)
        if loss < best:
            best = float(loss)
        print(f"step {step} loss={loss:.3f} acc={int(correct) / seen:.3f}", end="\r")
    print()


if __name__ == "__main__":
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(1)
    data = TensorDataset(torch.randn(1536, 20), torch.randint(0, 3, (1536,)))
    model = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 3)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _epoch in range(2):
        train_epoch(model, DataLoader(data, batch_size=32, shuffle=True), optimizer, device)
