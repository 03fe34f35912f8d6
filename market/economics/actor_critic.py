"""An actor-critic learner with PPO's clipped objective, in numpy (thesis §4.2.4, Algorithm 4
lines 5–10).

The actor maps a state to a softmax over the discrete trade sizes of `v2v.ACTIONS`; the critic
estimates the state value. Both are one-hidden-layer tanh networks trained by Adam with
hand-written gradients. Parameters live in one dict of arrays, which is what federated
averaging (eq. 4.19) averages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Hyper:
    """PPO settings (the thesis uses OpenAI's PPO2 defaults, which these follow at small scale)."""

    hidden: int = 32
    learning_rate: float = 3e-3
    gamma: float = 0.99
    lam: float = 0.95
    """GAE λ."""
    clip: float = 0.2
    """ε of the clipped surrogate."""
    epochs: int = 4
    entropy: float = 0.01
    value_coef: float = 0.5


def init_params(inputs: int, actions: int, hidden: int, rng: np.random.Generator) -> Params:
    def layer(n_in: int, n_out: int, scale: float) -> np.ndarray:
        return rng.normal(0.0, scale / np.sqrt(n_in), (n_in, n_out))

    return {"a_w1": layer(inputs, hidden, 1.0), "a_b1": np.zeros(hidden),
            "a_w2": layer(hidden, actions, 0.01), "a_b2": np.zeros(actions),
            "c_w1": layer(inputs, hidden, 1.0), "c_b1": np.zeros(hidden),
            "c_w2": layer(hidden, 1, 1.0), "c_b2": np.zeros(1)}


def policy(params: Params, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Action probabilities π(·|s) and the actor's hidden layer."""
    hidden = np.tanh(obs @ params["a_w1"] + params["a_b1"])
    logits = hidden @ params["a_w2"] + params["a_b2"]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True), hidden


def value(params: Params, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V(s) and the critic's hidden layer."""
    hidden = np.tanh(obs @ params["c_w1"] + params["c_b1"])
    return (hidden @ params["c_w2"] + params["c_b2"])[:, 0], hidden


def advantages(rewards: np.ndarray, values: np.ndarray, active: np.ndarray, hyper: Hyper) -> np.ndarray:
    """GAE over (time, episode) arrays; an episode ends where it stops being active."""
    adv = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1])
    for t in range(rewards.shape[0] - 1, -1, -1):
        follows = active[t + 1] if t + 1 < rewards.shape[0] else np.zeros_like(active[t])
        next_value = np.where(follows, values[t + 1] if t + 1 < rewards.shape[0] else 0.0, 0.0)
        td = rewards[t] + hyper.gamma * next_value - values[t]
        running = np.where(active[t], td + hyper.gamma * hyper.lam * np.where(follows, running, 0.0), 0.0)
        adv[t] = running
    return adv


def _backward(params: Params, prefix: str, obs: np.ndarray, hidden: np.ndarray, grad_out: np.ndarray) -> Params:
    grad_hidden = grad_out @ params[f"{prefix}_w2"].T * (1 - hidden ** 2)
    return {f"{prefix}_w2": hidden.T @ grad_out, f"{prefix}_b2": grad_out.sum(axis=0),
            f"{prefix}_w1": obs.T @ grad_hidden, f"{prefix}_b1": grad_hidden.sum(axis=0)}


def gradients(params: Params, obs: np.ndarray, actions: np.ndarray, old_logp: np.ndarray,
              adv: np.ndarray, returns: np.ndarray, hyper: Hyper) -> Params:
    """Gradient of the PPO loss −min(r·Â, clip(r, 1±ε)·Â) − c_H·H(π) + c_V·(V − R)²."""
    n = len(actions)
    probs, a_hidden = policy(params, obs)
    taken = probs[np.arange(n), actions]
    ratio = taken / np.exp(old_logp)
    unclipped = np.where(adv >= 0, ratio <= 1 + hyper.clip, ratio >= 1 - hyper.clip)
    onehot = np.eye(probs.shape[1])[actions]
    grad_logits = -(unclipped * adv * ratio)[:, None] * (onehot - probs) / n
    logp = np.log(probs + 1e-12)
    entropy = -(probs * logp).sum(axis=1, keepdims=True)
    grad_logits += hyper.entropy * probs * (logp + entropy) / n
    values, c_hidden = value(params, obs)
    grad_value = (2 * hyper.value_coef * (values - returns) / n)[:, None]
    return _backward(params, "a", obs, a_hidden, grad_logits) | _backward(params, "c", obs, c_hidden, grad_value)


@dataclass
class Adam:
    """Adam's moment estimates for one learner (kept locally; only parameters are federated)."""

    learning_rate: float
    first: Params | None = None
    second: Params | None = None
    steps: int = 0

    def apply(self, params: Params, grads: Params) -> Params:
        if self.first is None or self.second is None:
            self.first = {k: np.zeros_like(v) for k, v in params.items()}
            self.second = {k: np.zeros_like(v) for k, v in params.items()}
        self.steps += 1
        updated = {}
        for key, grad in grads.items():
            self.first[key] = 0.9 * self.first[key] + 0.1 * grad
            self.second[key] = 0.999 * self.second[key] + 0.001 * grad ** 2
            m_hat = self.first[key] / (1 - 0.9 ** self.steps)
            v_hat = self.second[key] / (1 - 0.999 ** self.steps)
            updated[key] = params[key] - self.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
        return updated


def update(params: Params, optimiser: Adam, obs: np.ndarray, actions: np.ndarray, old_logp: np.ndarray,
           adv: np.ndarray, returns: np.ndarray, hyper: Hyper) -> Params:
    """Several full-batch PPO epochs on one batch of experience (advantages normalised)."""
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    for _ in range(hyper.epochs):
        params = optimiser.apply(params, gradients(params, obs, actions, old_logp, adv, returns, hyper))
    return params
