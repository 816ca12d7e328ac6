"""``edgebench search``: NSGA-II over per-group keep ratios, the target measuring every individual.

The genetic search of layer-wise compression ratios (the DeepLabV3+ deployment study's), through
pymoo's ask-and-tell interface: NSGA-II asks for a generation (the first half uniform cuts, half
random: ``UniformCutsFirst``), each distinct set of widths
(``edgebench.search.space``) is built once from the baseline (its lowest-scoring channels by
``--criterion`` removed, ``ratio_cut``), fine-tuned for ``--finetune-steps`` and evaluated, and all
of a generation's new individuals are measured in ONE paired run per backend with the baseline
(the greedy pruner's ``_measure``: roles current and baseline are both the baseline, so every run
carries its own A/A ratio). A set of widths met before keeps its first measurement. NSGA-II is told
``1 - accuracy`` and the latency ratio to the baseline on each backend (``accuracy,latency``) or
the MACs ratio (``accuracy,macs``, latency still measured so both searches land on measured latency).

After the last generation the final population's front gets ``--final-finetune-steps`` more and is
measured again, with twice the rounds, in one paired run per backend; those models are saved in
``front/`` for the worker (``edgebench run --model DIR/front/individual-NNN.pt``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.evaluator import Evaluator
from pymoo.core.problem import Problem
from pymoo.problems.static import StaticProblem

from edgebench.prune.baseline import Prunable, saved_model
from edgebench.prune.importance import channel_scores
from edgebench.prune.loop import FINAL_ROUNDS_FACTOR, Baseline, Candidate, Pruner
from edgebench.prune.proposals import Proposal
from edgebench.prune.surgery import cut, macs_and_params
from edgebench.results.record import Record
from edgebench.search.archive import Archive, Individual, Tuned
from edgebench.search.space import Space, SnapToWidths, UniformCutsFirst, Widths
from edgebench.sweep.paired import Ratio

FRONT_DIR = "front"


@dataclass(frozen=True)
class SearchConfig:
    objectives: str = "accuracy,latency"
    population: int = 8
    generations: int = 8
    min_keep: float = 0.25
    seed: int = 0


class Search(Pruner):
    """The search; the baseline, the files the worker loads and the paired measurement are the
    pruner's. ``out`` receives report.json, front.csv and the final front's models."""

    def __init__(self, *args, search: SearchConfig, out: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.search = search
        self.out = out

    def run(self, prunable: Prunable, report: dict[str, Any]) -> dict[str, Any]:
        """Search, writing ``report`` (what the caller knows: target, run id) with the results
        after every generation; returns the final report."""
        started = time.perf_counter()
        base = self.baseline(prunable)
        graph = self.graph(base.module, first=True)
        self.scores = channel_scores(self.config.criterion, base.module, graph.groups, self.task,
                                     self.config.score_inputs)
        space = Space({group: graph.width(group) for group in graph.groups}, self.search.min_keep,
                      self.config.round_to)
        self.base, self.base_graph, self.space = base, graph, space
        self.baseline_latency: dict[str, float] = {}
        archive = Archive(self.out, self.search.objectives, space.groups, self.backends, base.macs)
        report = {**report, **self._settings(base, space)}
        report["baseline"]["latency_ms"] = self.baseline_latency  # filled in by the first paired run
        archive.write(report)
        problem = Problem(n_var=len(space.groups), n_obj=archive.n_objectives, xl=self.search.min_keep, xu=1.0)
        algorithm = NSGA2(pop_size=self.search.population, sampling=UniformCutsFirst(), repair=SnapToWidths(space))
        algorithm.setup(problem, termination=("n_gen", self.search.generations), seed=self.search.seed)
        self.log(f"search: {len(space.groups)} groups, population {self.search.population}, "
                 f"{self.search.generations} generations, objectives {self.search.objectives}")
        population: list[Individual] = []
        while algorithm.has_next():
            asked = algorithm.ask()
            generation = algorithm.n_iter
            offspring = [space.kept(x) for x in asked.get("X")]
            new = list(dict.fromkeys(w for w in offspring if w not in archive.individuals))
            reference = self._measure_generation(generation, new, archive)
            told = [archive.individuals[widths] for widths in offspring]
            Evaluator().eval(StaticProblem(problem, F=archive.points(told)), asked)
            algorithm.tell(infills=asked)
            population = [archive.individuals[space.kept(x)] for x in algorithm.pop.get("X")]
            self._release(archive, population)
            entry = archive.add_generation(generation, population, len(new), len(offspring) - len(new),
                                           time.perf_counter() - started, reference)
            archive.write(report)
            self.log(self._progress_line(entry, archive, base))
        archive.final = self._final(archive.front(population), archive)
        report["wall_s"] = round(time.perf_counter() - started, 1)
        report["best_latency_at_floor"] = {"search": archive.best_latency(list(archive.individuals.values()),
                                                                          base.floor),
                                           "final": archive.best_latency(archive.final, base.floor)}
        return archive.write(report)

    # -- one generation -----------------------------------------------------------------------

    def _measure_generation(self, generation: int, new: list[Widths], archive: Archive) -> dict[str, Optional[Ratio]]:
        """Build, fine-tune and evaluate each new set of widths, then measure them all with the
        baseline in one paired run per backend; their records go to the store at once."""
        candidates, individuals = [], []
        for widths in new:
            individual, candidate = self._build(generation, len(archive.individuals) + len(individuals) + 1, widths)
            individuals.append(individual)
            candidates.append(candidate)
        reference: dict[str, Optional[Ratio]] = {}
        if not candidates:
            return reference
        self.log(f"generation {generation}: measuring {len(candidates)} new individual(s) on "
                 f"{', '.join(self.backends)}")
        pending, _ = self._measure(generation, self.base.resolved, self.base.resolved, candidates,
                                   self.baseline_latency, reference)
        for individual, candidate in zip(individuals, candidates):
            individual.latency_ratio, individual.latency_ms = candidate.ratio_to_baseline, candidate.latency_ms
            archive.individuals[individual.widths] = individual
            if candidate.reason:  # a backend could not measure it: NSGA-II sees it as dominated
                self.log(f"generation {generation}: individual {individual.number} not measured: {candidate.reason}")
        self.keep_records(self._annotated(pending, list(zip(candidates, individuals)), "search", archive))
        self._discard(candidates)
        return reference

    def _build(self, generation: int, number: int, widths: Widths) -> tuple[Individual, Candidate]:
        module, history = self._pruned(widths)
        accuracy = self.task.evaluate(module)
        macs, params = macs_and_params(module, self.example_input)
        individual = Individual(number, generation, widths, accuracy, macs, params, module=module)
        resolved = self.materialize(module, f"individual-{number:03d}",
                                    f"{self.model_name} [search individual {number}]")
        return individual, self._candidate_of(individual, generation, module, resolved, accuracy, history)

    def _pruned(self, widths: Widths):
        """The baseline cut to ``widths`` and fine-tuned for ``--finetune-steps``; its pruning history."""
        module, history = cut(self.base_graph, self.space.drops(widths, self.scores))
        self.task.finetune(module, self.config.finetune_steps)
        return module, history

    def _candidate_of(self, individual: Individual, generation: int, module, resolved, accuracy: float,
                      history: list) -> Candidate:
        """The individual in the shape the pruner's paired measurement fills in."""
        proposal = Proposal(f"individual {individual.number}", sum(self.space.widths.values()), sum(individual.widths))
        return Candidate(generation, proposal, module, history, resolved, individual.macs, individual.params,
                         accuracy=accuracy)

    @staticmethod
    def _release(archive: Archive, population: list[Individual]) -> None:
        """Drop the modules of individuals NSGA-II did not keep: only the population's are fine-tuned again."""
        kept = {id(individual) for individual in population}
        for individual in archive.individuals.values():
            if id(individual) not in kept:
                individual.module = None

    # -- the end ------------------------------------------------------------------------------

    def _final(self, front: list[Individual], archive: Archive) -> list[Tuned]:
        """The final front fine-tuned longer, saved under ``front/`` and measured again together."""
        if not front:
            return []
        self.log(f"final front: {len(front)} individual(s), {self.config.final_finetune_steps} more fine-tuning "
                 "steps each, then one paired run with the baseline")
        (self.out / FRONT_DIR).mkdir(parents=True, exist_ok=True)
        tuned, candidates = [], []
        generation = len(archive.generations) + 1
        for individual in front:
            # Left NSGA-II's population once and came back as a duplicate: built again.
            module = individual.module if individual.module is not None else self._pruned(individual.widths)[0]
            self.task.finetune(module, self.config.final_finetune_steps)
            accuracy = self.task.evaluate(module)
            path = self.out / FRONT_DIR / f"individual-{individual.number:03d}.pt"
            resolved = saved_model(module, path, self.input_shape,
                                   f"{self.model_name} [search individual {individual.number}, fine-tuned]", self.part)
            tuned.append(Tuned(individual, accuracy, model_file=str(path.relative_to(self.out))))
            candidates.append(self._candidate_of(individual, generation, module, resolved, accuracy, []))
        pairing = dataclasses.replace(self.config.pairing, rounds=self.config.pairing.rounds * FINAL_ROUNDS_FACTOR)
        pending, _ = self._measure(generation, self.base.resolved, self.base.resolved, candidates,
                                   self.baseline_latency, {}, role="final", pairing=pairing)
        for item, candidate in zip(tuned, candidates):
            item.latency_ratio, item.latency_ms = candidate.ratio_to_baseline, candidate.latency_ms
        self.keep_records(self._annotated(pending, list(zip(candidates, (t.individual for t in tuned))), "final",
                                          archive, {t.individual.number: t.accuracy for t in tuned}))
        for item in tuned:
            shown = ", ".join(f"{b} {r}" for b, r in item.latency_ratio.items())
            self.log(f"final: individual {item.individual.number}: {self.metric} {item.individual.accuracy:.2%} -> "
                     f"{item.accuracy:.2%}, latency over the baseline {shown}")
        return tuned

    # -- records and lines --------------------------------------------------------------------

    def _annotated(self, pending: list[tuple[Record, dict]], measured: list[tuple[Candidate, Individual]], stage: str,
                   archive: Archive, accuracies: Optional[dict[int, float]] = None) -> list[Record]:
        """Each record with what the search made of it, under ``env.search``: the generation, and
        for an individual its number, widths and scores (the baseline's two roles carry none)."""
        by_name = {candidate.resolved.name: individual for candidate, individual in measured}
        records = []
        for record, step in pending:
            search: dict[str, Any] = {"stage": stage, "generation": step["iteration"], "role": step["role"],
                                      "objectives": self.search.objectives}
            individual = by_name.get(record.model) if step["role"] in ("candidate", "final") else None
            if individual is not None:
                search.update(individual=individual.number, widths=dict(zip(archive.groups, individual.widths)),
                              accuracy=(accuracies or {}).get(individual.number, individual.accuracy),
                              macs=individual.macs, params=individual.params)
            records.append(record.model_copy(update={"env": {**record.env, "search": search}}))
        return records

    def _progress_line(self, entry: dict[str, Any], archive: Archive, base: Baseline) -> str:
        best = archive.best_latency([i for i in archive.individuals.values() if i.generation <= entry["generation"]],
                                    base.floor)
        shown = f"{best:.3f}x the baseline" if best is not None else "none yet"
        return (f"generation {entry['generation']}/{self.search.generations}: {entry['new']} new, "
                f"{entry['cached']} met before; hypervolume {entry['hypervolume']:.4f}; best latency at the "
                f"{self.metric} floor {base.floor:.2%}: {shown}; front of {len(entry['front'])}; "
                f"{entry['elapsed_s']:.0f} s")

    def _settings(self, base: Baseline, space: Space) -> dict[str, Any]:
        config = self.config
        return {
            "model": self.model_name, "task": self.task.name, "metric": self.metric, "backends": list(self.backends),
            "measured_part": self.part, "kept_layers": self.kept,
            "objectives": self.search.objectives, "population": self.search.population,
            "planned_generations": self.search.generations, "min_keep": self.search.min_keep, "seed": self.search.seed,
            "criterion": config.criterion, "round_to": config.round_to, "finetune_steps": config.finetune_steps,
            "final_finetune_steps": config.final_finetune_steps, "max_accuracy_drop": config.max_accuracy_drop,
            "pairing": dataclasses.asdict(config.pairing), "widths": space.widths,
            "baseline": {"accuracy": base.accuracy, "floor": base.floor, "macs": base.macs, "params": base.params,
                         "training": base.training},
        }
