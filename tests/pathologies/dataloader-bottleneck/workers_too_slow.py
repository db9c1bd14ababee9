"""Two DataLoader workers cannot keep up with per-sample Python augmentation."""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

torch.set_num_threads(1)


class Augmented(Dataset):
    def __len__(self):
        return 512

    def __getitem__(self, index):
        features = []
        for k in range(800):
            features.append(math.sin(index * 0.01 + k) * math.cos(k * 0.5))
        return torch.tensor(features[:32]), index % 3


if __name__ == "__main__":
    loader = DataLoader(Augmented(), batch_size=32, num_workers=2, shuffle=True)
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    print("done")
