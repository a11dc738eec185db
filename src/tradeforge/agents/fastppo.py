"""``FastPPO``: SB3's PPO with a lean rollout and update loop (``agent.backend: fast``).

The network, optimizer, hyperparameters, ``learn`` loop, callbacks, logger and saved ``model.zip``
are SB3's own (``FastPPO`` subclasses ``stable_baselines3.PPO``), so a policy trained here loads
with ``PPO.load`` and the policy artifact, replay, backtest, paper, serve and explain are
unchanged. Two methods are replaced:

* ``collect_rollouts``: one no-grad forward of the policy's own modules per vectorised step,
  actions sampled directly from the Gaussian / categorical head, results written into
  preallocated tensors (no ``RolloutBuffer``, no distribution objects, no per-env Python loop
  except for the few rows whose episode was truncated, bootstrapped as SB3 does);
* ``train``: the clipped-surrogate PPO update (advantage normalisation, optional value
  clipping, entropy bonus, gradient-norm clipping, optional ``target_kl`` early stop) on
  minibatches indexed from flat tensors, with closed-form log-probabilities and entropies.

Everything else (GAE with ``gae_lambda``, ``clip_range`` schedules, learning-rate schedules) has
SB3's semantics; :data:`FAST_HYPERPARAMS` are the defaults of the fast path (larger minibatches
and fewer epochs than :data:`tradeforge.agents.factory.DEFAULT_HYPERPARAMS`).
"""

from __future__ import annotations

import math
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from tradeforge.core.errors import AgentError

#: Defaults of ``agent.backend: fast``: 256 steps per env, 512-sample minibatches, 4 epochs.
FAST_HYPERPARAMS: dict[str, Any] = {
    "n_steps": 256,
    "batch_size": 512,
    "n_epochs": 4,
    "gamma": 0.99,
    "ent_coef": 0.01,
}

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


_ACTIVATIONS: dict[type[torch.nn.Module], Any] = {
    torch.nn.Tanh: torch.tanh,
    torch.nn.ReLU: torch.relu,
    torch.nn.ELU: torch.nn.functional.elu,
}


def _linear_stack(net: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, Any]] | None:
    """(weight, bias, activation) of a Sequential of Linear + activation pairs, else None."""
    if not isinstance(net, torch.nn.Sequential):
        return None
    modules = list(net)
    if len(modules) % 2:
        return None
    out: list[tuple[torch.Tensor, torch.Tensor, Any]] = []
    for linear, activation in zip(modules[::2], modules[1::2], strict=True):
        fn = _ACTIVATIONS.get(type(activation))
        if not isinstance(linear, torch.nn.Linear) or linear.bias is None or fn is None:
            return None
        out.append((linear.weight, linear.bias, fn))
    return out


def _block_diag(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = torch.block_diag(a, b)  # type: ignore[no-untyped-call]
    return out


class FastPPO(PPO):
    """PPO with a batched, allocation-free rollout and a compact update (see the module doc).

    Supports ``Box`` (diagonal Gaussian, no gSDE) and ``Discrete`` action spaces with a flat
    ``Box`` observation and SB3's ``MlpPolicy``; anything else raises ``AgentError`` at build.
    """

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.use_sde:
            raise AgentError("agent.backend = 'fast' does not support use_sde=True; use 'sb3'")
        if not isinstance(self.action_space, gym.spaces.Box | gym.spaces.Discrete):
            raise AgentError(
                f"agent.backend = 'fast' supports Box or Discrete actions; got {self.action_space}"
                " (use agent.backend: sb3)"
            )
        if not isinstance(self.observation_space, gym.spaces.Box):
            raise AgentError(
                f"agent.backend = 'fast' needs a Box observation space; got "
                f"{self.observation_space} (use agent.backend: sb3)"
            )
        self._continuous = isinstance(self.action_space, gym.spaces.Box)
        self._batch: dict[str, torch.Tensor] | None = None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_batch", "_continuous"]

    # -- network pieces ----------------------------------------------------------------------
    def _fused_layers(self) -> list[tuple[torch.Tensor, torch.Tensor, Any]] | None:
        """Actor and critic as one MLP: concatenated first layer, block-diagonal others.

        ``None`` when the policy is not the plain ``MlpPolicy`` shape (same depth and
        activation in both towers, flat features); then the modules are called one by one.
        Built from the live parameters, so gradients reach them.
        """
        policy = self.policy
        if not isinstance(policy.features_extractor, FlattenExtractor):
            return None
        towers = [policy.mlp_extractor.policy_net, policy.mlp_extractor.value_net]
        parsed = [_linear_stack(t) for t in towers]
        if parsed[0] is None or parsed[1] is None or len(parsed[0]) != len(parsed[1]):
            return None
        layers: list[tuple[torch.Tensor, torch.Tensor, Any]] = []
        for depth, ((w_pi, b_pi, f_pi), (w_vf, b_vf, f_vf)) in enumerate(zip(*parsed, strict=True)):
            if f_pi is not f_vf:
                return None
            weight = torch.cat([w_pi, w_vf]) if depth == 0 else _block_diag(w_pi, w_vf)
            layers.append((weight, torch.cat([b_pi, b_vf]), f_pi))
        action = cast(torch.nn.Linear, policy.action_net)
        value = policy.value_net
        if not parsed[0]:  # no hidden layers: both heads read the features
            weight = torch.cat([action.weight, value.weight])
        else:
            weight = _block_diag(action.weight, value.weight)
        layers.append((weight, torch.cat([action.bias, value.bias]), None))
        return layers

    def _heads(
        self, obs: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor, Any]] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(action mean or logits, value) for a batch of normalised observations."""
        if layers is not None:
            x = obs
            for weight, bias, act in layers:
                x = torch.nn.functional.linear(x, weight, bias)
                if act is not None:
                    x = act(x)
            return x[:, :-1], x[:, -1]
        policy = self.policy
        features = policy.extract_features(obs)
        if policy.share_features_extractor:
            latent_pi, latent_vf = policy.mlp_extractor(features)
        else:
            pi_features, vf_features = features
            latent_pi = policy.mlp_extractor.forward_actor(pi_features)
            latent_vf = policy.mlp_extractor.forward_critic(vf_features)
        return policy.action_net(latent_pi), policy.value_net(latent_vf).flatten()

    def _log_prob_entropy(
        self, head: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._continuous:
            log_std = self.policy.log_std
            z = (actions - head) * torch.exp(-log_std)
            log_prob = (-0.5 * z.pow(2) - log_std - _LOG_SQRT_2PI).sum(dim=1)
            entropy = (0.5 + _LOG_SQRT_2PI + log_std).sum().expand(head.shape[0])
            return log_prob, entropy
        log_p = torch.log_softmax(head, dim=1)
        log_prob = log_p.gather(1, actions.long().view(-1, 1)).flatten()
        entropy = -(log_p.exp() * log_p).sum(dim=1)
        return log_prob, entropy

    # -- rollout -------------------------------------------------------------------------------
    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: Any,
        n_rollout_steps: int,
    ) -> bool:
        if self._last_obs is None:
            raise AgentError("FastPPO.collect_rollouts() called before learn() reset the env")
        self.policy.set_training_mode(False)
        n_envs = env.num_envs
        obs_dim = int(np.prod(tuple(self.observation_space.shape or ())))
        continuous = self._continuous
        device = self.device
        obs_buf = torch.empty((n_rollout_steps, n_envs, obs_dim), device=device)
        val_buf = torch.empty((n_rollout_steps, n_envs), device=device)
        rew_buf = np.zeros((n_rollout_steps, n_envs), dtype=np.float32)
        done_buf = np.zeros((n_rollout_steps, n_envs), dtype=np.float32)
        if continuous:
            space = self.action_space
            if not isinstance(space, gym.spaces.Box):  # checked in _setup_model
                raise AgentError(f"FastPPO continuous path needs a Box action space, got {space}")
            act_dim = int(np.prod(space.shape))
            low, high = space.low.reshape(1, -1), space.high.reshape(1, -1)
            env_shape = (n_envs, *space.shape)
            # all the rollout's Gaussian noise in one draw; actions = mean + std * noise
            noise = torch.randn((n_rollout_steps, n_envs, act_dim), device=device)
            act_buf = torch.empty((n_rollout_steps, n_envs, act_dim), device=device)
        else:
            n_actions = int(self.action_space.n)  # type: ignore[attr-defined]
            # Gumbel-max sampling: argmax(logits + Gumbel noise) draws from the softmax
            uniform = torch.rand((n_rollout_steps, n_envs, n_actions), device=device)
            noise = -torch.log(-torch.log(uniform.clamp_(1e-12, 1.0)))
            act_buf = torch.empty((n_rollout_steps, n_envs), device=device)
            logits_buf = torch.empty((n_rollout_steps, n_envs, n_actions), device=device)
        callback.on_rollout_start()
        last_obs = np.asarray(self._last_obs, dtype=np.float32).reshape(n_envs, obs_dim)
        gamma = float(self.gamma)
        with torch.no_grad():
            layers = self._fused_layers()
            std = torch.exp(self.policy.log_std) if continuous else None
            for step in range(n_rollout_steps):
                obs_t = obs_buf[step]
                obs_t.copy_(torch.from_numpy(last_obs))  # host -> device when on a GPU
                head, values = self._heads(obs_t, layers)
                if continuous:
                    actions = torch.addcmul(head, noise[step], std)  # type: ignore[arg-type]
                    act_buf[step] = actions
                    env_actions: np.ndarray = np.clip(actions.cpu().numpy(), low, high).reshape(
                        env_shape
                    )
                else:
                    logits_buf[step] = head
                    choice = torch.argmax(head + noise[step], dim=1)
                    act_buf[step] = choice
                    env_actions = choice.cpu().numpy()
                val_buf[step] = values
                new_obs, rewards, dones, infos = self._env_step(env, env_actions)
                self.num_timesteps += n_envs
                callback.update_locals({"infos": infos, "dones": dones, "rewards": rewards})
                if not callback.on_step():
                    return False
                self._update_info_buffer(infos, dones)
                rew_buf[step] = rewards
                if dones.any():
                    done_buf[step] = dones
                    self._bootstrap_truncated(rew_buf[step], dones, infos, gamma, layers)
                last_obs = np.asarray(new_obs, dtype=np.float32).reshape(n_envs, obs_dim)
            _, last_values = self._heads(torch.from_numpy(last_obs).to(device), layers)
            if continuous:
                log_std = self.policy.log_std
                constant = log_std.sum() + act_dim * _LOG_SQRT_2PI
                logp_buf = -0.5 * noise.pow(2).sum(dim=2) - constant
            else:
                log_p = torch.log_softmax(logits_buf, dim=2)
                logp_buf = log_p.gather(2, act_buf.long().unsqueeze(2)).squeeze(2)
        self._last_obs = new_obs
        self._last_episode_starts = dones
        advantages = self._gae(val_buf, rew_buf, done_buf, last_values)
        self._batch = {
            "obs": obs_buf.reshape(-1, obs_dim),
            "actions": act_buf.reshape(n_rollout_steps * n_envs, -1).squeeze(1)
            if not continuous
            else act_buf.reshape(-1, act_dim),
            "log_prob": logp_buf.reshape(-1),
            "values": val_buf.reshape(-1),
            "advantages": advantages.reshape(-1),
            "returns": (advantages + val_buf).reshape(-1),
        }
        callback.update_locals({"infos": infos, "dones": dones})
        callback.on_rollout_end()
        return True

    @staticmethod
    def _env_step(env: VecEnv, actions: np.ndarray) -> Any:
        """``env.step(actions)``; through a training ``VecNormalize`` that normalises
        observations only, its very statistics update and normalisation are applied here,
        without its per-step copies and the return statistics it keeps for reward normalisation
        (unused then, and not part of the saved normalizer)."""
        if not (
            isinstance(env, VecNormalize)
            and env.training
            and env.norm_obs
            and not env.norm_reward
            and isinstance(env.obs_rms, RunningMeanStd)
        ):
            return env.step(actions)
        obs, rewards, dones, infos = env.venv.step(actions)
        env.old_obs, env.old_reward = obs, rewards
        rms = env.obs_rms
        rms.update(obs)
        for i in np.flatnonzero(dones).tolist():
            final = infos[i].get("terminal_observation")
            if final is not None:
                infos[i]["terminal_observation"] = env._normalize_obs(final, rms).astype(np.float32)
        return env._normalize_obs(obs, rms).astype(np.float32), rewards, dones, infos

    def _bootstrap_truncated(
        self,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
        gamma: float,
        layers: list[tuple[torch.Tensor, torch.Tensor, Any]] | None,
    ) -> None:
        """Add gamma * V(final observation) to the reward of rows cut by a time limit."""
        rows = [
            i
            for i in np.flatnonzero(dones).tolist()
            if infos[i].get("TimeLimit.truncated", False)
            and infos[i].get("terminal_observation") is not None
        ]
        if not rows:
            return
        terminal = np.stack(
            [
                np.asarray(infos[i]["terminal_observation"], dtype=np.float32).reshape(-1)
                for i in rows
            ]
        )
        _, values = self._heads(torch.from_numpy(terminal).to(self.device), layers)
        rewards[rows] += gamma * values.detach().cpu().numpy()

    def _gae(
        self,
        values: torch.Tensor,
        rewards: np.ndarray,
        dones: np.ndarray,
        last_values: torch.Tensor,
    ) -> torch.Tensor:
        """Generalised advantage estimates (n_steps, n_envs), SB3's recursion in numpy."""
        vals = values.cpu().numpy().astype(np.float64)
        last = last_values.cpu().numpy().astype(np.float64)
        not_done = 1.0 - dones.astype(np.float64)
        gamma, lam = float(self.gamma), float(self.gae_lambda)
        out = np.zeros_like(vals)
        running = np.zeros(vals.shape[1])
        for t in range(vals.shape[0] - 1, -1, -1):
            next_values = last if t == vals.shape[0] - 1 else vals[t + 1]
            delta = rewards[t] + gamma * next_values * not_done[t] - vals[t]
            running = delta + gamma * lam * not_done[t] * running
            out[t] = running
        return torch.from_numpy(out.astype(np.float32)).to(values.device)

    # -- update --------------------------------------------------------------------------------
    def train(self) -> None:
        batch = self._batch
        if batch is None:
            raise AgentError("FastPPO.train() called before collect_rollouts()")
        policy = self.policy
        policy.set_training_mode(True)
        self._update_learning_rate(policy.optimizer)
        clip_range = float(self.clip_range(self._current_progress_remaining))  # type: ignore[operator]
        clip_range_vf = None
        if self.clip_range_vf is not None:
            clip_range_vf = float(self.clip_range_vf(self._current_progress_remaining))  # type: ignore[operator]
        params = list(policy.parameters())
        n = int(batch["obs"].shape[0])
        size = int(self.batch_size)
        policy_losses: list[torch.Tensor] = []
        value_losses: list[torch.Tensor] = []
        entropy_losses: list[torch.Tensor] = []
        clip_fractions: list[torch.Tensor] = []
        approx_kl = 0.0
        epochs_done = 0
        continue_training = True
        for _ in range(self.n_epochs):
            order = torch.randperm(n, device=self.device)
            for start in range(0, n, size):
                idx = order[start : start + size]
                head, values = self._heads(batch["obs"][idx], self._fused_layers())
                log_prob, entropy = self._log_prob_entropy(head, batch["actions"][idx])
                adv = batch["advantages"][idx]
                if self.normalize_advantage and adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                log_ratio = log_prob - batch["log_prob"][idx]
                ratio = torch.exp(log_ratio)
                surrogate = torch.min(
                    adv * ratio, adv * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
                )
                policy_loss = -surrogate.mean()
                if clip_range_vf is not None:
                    old = batch["values"][idx]
                    values = old + torch.clamp(values - old, -clip_range_vf, clip_range_vf)
                value_loss = torch.nn.functional.mse_loss(batch["returns"][idx], values)
                entropy_loss = -entropy.mean()
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                with torch.no_grad():
                    clip_fractions.append(((ratio - 1.0).abs() > clip_range).float().mean())
                    policy_losses.append(policy_loss.detach())
                    value_losses.append(value_loss.detach())
                    entropy_losses.append(entropy_loss.detach())
                    if self.target_kl is not None:
                        approx_kl = float(((ratio - 1.0) - log_ratio).mean())
                if self.target_kl is not None and approx_kl > 1.5 * self.target_kl:
                    continue_training = False
                    break
                policy.optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                policy.optimizer.step()
            epochs_done += 1
            if not continue_training:
                break
        self._n_updates += epochs_done
        self._batch = None
        if policy_losses:
            for key, items in (
                ("policy_gradient_loss", policy_losses),
                ("value_loss", value_losses),
                ("entropy_loss", entropy_losses),
                ("clip_fraction", clip_fractions),
            ):
                self.logger.record(f"train/{key}", float(torch.stack(items).mean()))
        if self.target_kl is not None:
            self.logger.record("train/approx_kl", approx_kl)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)


__all__ = ["FAST_HYPERPARAMS", "FastPPO"]
