"""Transfers between accounts from several threads, always locking the lower account id first:
a consistent order, no deadlock possible."""

import random
import threading


class Account:
    def __init__(self, ident, balance):
        self.ident = ident
        self.balance = balance
        self.lock = threading.Lock()


def transfer(source, destination, amount):
    first, second = sorted((source, destination), key=lambda account: account.ident)
    with first.lock:
        with second.lock:
            source.balance -= amount
            destination.balance += amount


def worker(accounts, seed, rounds):
    rng = random.Random(seed)
    for _ in range(rounds):
        a, b = rng.sample(accounts, 2)
        transfer(a, b, rng.randint(1, 5))


if __name__ == "__main__":
    accounts = [Account(i, 1000) for i in range(4)]
    threads = [threading.Thread(target=worker, args=(accounts, seed, 3000)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(a.balance for a in accounts))
