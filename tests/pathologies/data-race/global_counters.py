"""Preprocessing with a thread pool that counts tokens in module-level counters: the
``+=`` on shared ints and dict entries is a read-modify-write that threads interleave."""

from concurrent.futures import ThreadPoolExecutor

tokens_seen = 0
vocabulary = {}


def count_tokens(document):
    global tokens_seen
    for word in document.split():
        vocabulary[word] = vocabulary.get(word, 0) + 1
        tokens_seen += 1
    return len(document)


if __name__ == "__main__":
    documents = [" ".join(f"w{(i * j) % 97}" for j in range(400)) for i in range(300)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        total = sum(pool.map(count_tokens, documents))
    print(total, tokens_seen, len(vocabulary))
