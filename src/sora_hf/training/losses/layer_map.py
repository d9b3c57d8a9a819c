"""Layer maps of the intermediate-layer distillation terms: which student layer matches which teacher layer."""


def parse_layer_map(layer_map: "str | list[tuple[int, int]] | None") -> list[tuple[int, int]] | None:
    """`"2:3,4:6"` (student:teacher pairs) → `[(2, 3), (4, 6)]`; `None` stays `None` (the default map)."""
    if layer_map is None or isinstance(layer_map, list | tuple):
        return None if layer_map is None else [(int(s), int(t)) for s, t in layer_map]
    pairs = []
    for item in str(layer_map).split(","):
        student, sep, teacher = item.strip().partition(":")
        if not sep or not student.strip().isdigit() or not teacher.strip().isdigit():
            raise ValueError(
                f"Layer map {layer_map!r}: write comma-separated student:teacher layer pairs such as '2:3,4:6'."
            )
        pairs.append((int(student), int(teacher)))
    return pairs


def default_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """Student layer i (1-based) ↦ teacher layer round(i · T / S): the student's layers spread over the teacher's."""
    return [
        (i, (i * teacher_layers + student_layers // 2) // student_layers)
        for i in range(1, student_layers + 1)
    ]


def check_layer_map(
    layer_map: list[tuple[int, int]], student_layers: int, teacher_layers: int, first: int, what: str
) -> None:
    """Every pair must name an existing layer (`first` = 0 when the embeddings count as layer 0)."""
    if not layer_map:
        raise ValueError(f"The {what} layer map is empty: give at least one student:teacher pair.")
    for student, teacher in layer_map:
        if not first <= student <= student_layers or not first <= teacher <= teacher_layers:
            raise ValueError(
                f"The {what} layer map pair {student}:{teacher} is out of range: the student has layers "
                f"{first}..{student_layers}, the teacher {first}..{teacher_layers}."
            )
