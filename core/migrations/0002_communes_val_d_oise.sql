-- Reference communes of the launch department (Val-d'Oise); the full COG list is loaded with `vigie communes import`.
INSERT INTO communes (insee_code, name, department_code) VALUES
    ('95018', 'Argenteuil', '95'), ('95063', 'Bezons', '95'), ('95127', 'Cergy', '95'),
    ('95176', 'Cormeilles-en-Parisis', '95'), ('95210', 'Enghien-les-Bains', '95'), ('95218', 'Éragny', '95'),
    ('95219', 'Ermont', '95'), ('95252', 'Franconville', '95'), ('95268', 'Garges-lès-Gonesse', '95'),
    ('95277', 'Gonesse', '95'), ('95280', 'Goussainville', '95'), ('95306', 'Herblay-sur-Seine', '95'),
    ('95313', 'L''Isle-Adam', '95'), ('95323', 'Jouy-le-Moutier', '95'), ('95355', 'Magny-en-Vexin', '95'),
    ('95370', 'Marines', '95'), ('95428', 'Montmorency', '95'), ('95476', 'Osny', '95'), ('95500', 'Pontoise', '95'),
    ('95572', 'Saint-Ouen-l''Aumône', '95'), ('95585', 'Sarcelles', '95'), ('95607', 'Taverny', '95'),
    ('95637', 'Vauréal', '95'), ('95680', 'Villiers-le-Bel', '95')
ON CONFLICT (insee_code) DO NOTHING;
